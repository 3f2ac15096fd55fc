import type kafkajs from 'kafkajs';
import type { RelayConfig } from '../config/config.js';
import { UndecodableEventError, type EventCodec } from '../events/codec.js';
import type { Topics } from '../events/topics.js';
import type { KafkaClient } from '../kafka/client.js';
import { purgeSettledAtOnce } from '../expiry/purge.js';
import { topicConfigValue } from '../kafka/admin.js';
import { isPoison } from '../errors/failure.js';
import {
  APPLY_BACKOFF,
  applyIsolatingPoison,
  type BatchHandler,
  type ConsumedRecord,
} from '../kafka/consumer-service.js';
import { withRetry } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { migrate } from '../postgres/migrate.js';
import { createPool, type Pool, type PoolClient } from '../postgres/pool.js';
import { PROJECTION_NAME, postgresProjector } from '../projections/postgres-projector.js';
import { LogReader, throwawayGroupId } from './log-reader.js';
import { planRanges, rangeSize } from './offsets.js';

/*
 * Rebuilding the Postgres read model from the event log while the live projector keeps running.
 *
 * 1. Take a session advisory lock, so two rebuilds of one schema never run at once (a crash
 *    releases it with the connection). Drop what a crashed run left: `<schema>_rebuild`, and
 *    `<schema>_retired_<time>` schemas of a run that switched but died before dropping the old one.
 * 2. Create `<schema>_rebuild` and apply the migrations there, so it has exactly the tables this
 *    version of the relay expects; give it the live schema's owner and grants.
 * 3. Snapshot the log end offsets of the projector's topics, and read from the earliest offsets
 *    up to them with a throwaway consumer group. Records are decoded with the codec (older schema
 *    versions come out in the current shape) and handed, one partition batch at a time, to the
 *    same pure projection and writer the live projector uses (`postgresProjector`), through a pool
 *    whose search_path is the rebuild schema. So the rebuild writes the same rows and the same
 *    per-partition checkpoints, in the same transactions, as the live projector would.
 * 4. Catch up, without any lock, to the live projector's checkpoints, which have moved on
 *    meanwhile, until little is left: this keeps the pause of step 5 short. Then delete from the
 *    rebuild the settled messages the live expiry role has purged (older than
 *    RELAY_PURGE_AFTER_SECONDS), which the replay brought back.
 * 5. The switch, in ONE transaction on the live schema:
 *    - lock the live `projection_checkpoints` table in EXCLUSIVE mode, and read its rows with
 *      SELECT ... FOR UPDATE. The live projector starts every batch by locking its checkpoint row
 *      (SELECT ... FOR UPDATE, in lockCheckpoint or inside relay_apply_mailbox), so it now waits
 *      at the first statement of its next transaction: it pauses, and holds nothing that the
 *      switch needs. A table lock rather than row locks alone, because a partition that has no
 *      checkpoint row yet would not be held by a row lock.
 *    - The live projector writes rows and checkpoint in one transaction, so its checkpoints say
 *      exactly which records the live tables hold. Catch the rebuild up to those offsets. If the
 *      rebuild is further on in a partition (the live projector lags), that is fine: the projector
 *      skips records below the checkpoint it finds.
 *    - ALTER SCHEMA live RENAME TO live_retired_<time>; ALTER SCHEMA rebuild RENAME TO live; COMMIT.
 *    The live projector connects with search_path=<schema name>. When its waiting statement gets
 *    the lock, Postgres sees the catalog changed while it waited and looks the table name up again
 *    (RangeVarGetRelidExtended retries the lookup after invalidations; a plan cached in a function
 *    is dropped, as every cached plan is when a schema is renamed), so that statement and the
 *    rest of its transaction use the rebuilt schema and its checkpoints. Readers (the ingress)
 *    likewise see the old tables until the commit and the new ones after it: the switch is atomic.
 *    Tables the migrations create that are NOT projected from the log (API keys, token signing
 *    keys: state of record, not a read model) cannot be rebuilt; inside the same transaction they
 *    are moved (ALTER TABLE ... SET SCHEMA, data, indexes and grants included) from the live schema
 *    into the rebuilt one, replacing its empty copies, so nothing but the projection changes.
 * 6. Drop the retired schema (or keep it with `keepRetired`, to compare).
 *
 * A crash at any step before the commit leaves the live schema untouched; rerun the rebuild.
 * Safety: a live schema that holds objects the migrations do not create (an extension, another
 * application's table, a hand-made index) is refused rather than renamed and dropped with them.
 */

export interface RebuildReporter {
  /** A step began (a short sentence for people). */
  phase(text: string): void;
  /** Records replayed so far, and in all (the total grows while catching up). */
  progress(done: number, total: number): void;
}

export interface RebuildOptions {
  /** Keep the old schema as `<schema>_retired_<time>` instead of dropping it. */
  readonly keepRetired?: boolean;
  /** Rebuild even if retention already deleted the oldest records (the rebuilt model will lack them). */
  readonly allowTruncatedLog?: boolean;
  readonly signal?: AbortSignal;
  readonly reporter?: RebuildReporter;
  /** Catch up without the lock until at most this many records are left for the locked catch-up. */
  readonly lockedCatchUpMax?: number;
  /** How long the switch waits for the live projector's lock before trying again. */
  readonly lockTimeoutMs?: number;
}

export interface RebuildResult {
  /** The schema that now holds the rebuilt read model (the configured one). */
  readonly schema: string;
  /** Records replayed into the rebuild. */
  readonly events: number;
  /** Records that could not be decoded or applied, skipped as the live projector skips them. */
  readonly skipped: number;
  /** The retired schema's name if it was kept, else null. */
  readonly retired: string | null;
  /** How long the live projector was paused by the switch. */
  readonly pausedMs: number;
  readonly seconds: number;
}

/** A rebuild that cannot go on; the message says why and what to do. */
export class RebuildError extends Error {
  override readonly name: string = 'RebuildError';
}

/** The rebuild was stopped by a signal before it switched. */
export class RebuildInterrupted extends RebuildError {
  override readonly name = 'RebuildInterrupted';
}

const MAX_IDENTIFIER = 63;
const REBUILD_SUFFIX = '_rebuild';
const RETIRED_INFIX = '_retired_';

export const rebuildSchemaOf = (live: string): string =>
  `${live.slice(0, MAX_IDENTIFIER - REBUILD_SUFFIX.length)}${REBUILD_SUFFIX}`;

const retiredPrefixOf = (live: string): string =>
  `${live.slice(0, MAX_IDENTIFIER - RETIRED_INFIX.length - 14)}${RETIRED_INFIX}`;

/** `<schema>_retired_<yyyymmddhhmmss>` (UTC). */
export const retiredSchemaOf = (live: string, at: Date): string =>
  `${retiredPrefixOf(live)}${at
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)}`;

const q = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;

type Offsets = Map<string, Map<number, bigint>>;

interface CheckpointRow {
  readonly topic: string;
  readonly partition: number;
  readonly next_offset: string;
}

const toOffsets = (rows: readonly CheckpointRow[]): Offsets => {
  const result: Offsets = new Map();
  for (const row of rows) {
    const topic = result.get(row.topic) ?? new Map<number, bigint>();
    topic.set(row.partition, BigInt(row.next_offset));
    result.set(row.topic, topic);
  }
  return result;
};

/** Records from each position up to the target, summed over partitions where the target is ahead. */
const gapTo = (targets: Offsets, positions: Offsets): number => {
  let gap = 0n;
  for (const [topic, partitions] of targets) {
    for (const [partition, target] of partitions) {
      const position = positions.get(topic)?.get(partition) ?? 0n;
      if (target > position) gap += target - position;
    }
  }
  return Number(gap);
};

async function readCheckpoints(client: Pool | PoolClient, schema: string, lock = false): Promise<CheckpointRow[]> {
  const { rows } = await client.query<CheckpointRow>(
    `SELECT topic, partition, next_offset FROM ${q(schema)}.projection_checkpoints WHERE projection = $1${lock ? ' FOR UPDATE' : ''}`,
    [PROJECTION_NAME],
  );
  return rows;
}

async function schemaExists(client: PoolClient, schema: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return (rowCount ?? 0) > 0;
}

/** Tables, indexes, sequences, views, functions, types and extensions in a schema, as "kind name". */
async function objectsIn(client: PoolClient, schema: string): Promise<Set<string>> {
  const { rows } = await client.query<{ object: string }>(
    `SELECT CASE c.relkind WHEN 'i' THEN 'index ' WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'view '
                           ELSE 'table ' END || c.relname AS object
       FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'i', 'S', 'v', 'm', 'f')
     UNION ALL SELECT 'function ' || p.proname FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
     UNION ALL SELECT 'extension ' || e.extname FROM pg_extension e WHERE e.extnamespace = $1::regnamespace
     UNION ALL SELECT 'type ' || t.typname FROM pg_type t
       WHERE t.typnamespace = $1::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r', 'm')
         AND (t.typrelid = 0 OR EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind = 'c'))`,
    [schema],
  );
  return new Set(rows.map((r) => r.object));
}

/** The tables the read model projection writes; with schema_migrations, the rest of a schema is carried over. */
export const PROJECTED_TABLES: readonly string[] = [
  'messages',
  'peers',
  'projection_checkpoints',
  'anchors',
  'message_anchors',
];
const PER_SCHEMA_TABLES: readonly string[] = [...PROJECTED_TABLES, 'schema_migrations'];

/** Tables of the live schema that are not projected from the log, and so move to the rebuilt schema as they are. */
async function carriedTables(client: PoolClient, live: string): Promise<string[]> {
  const { rows } = await client.query<{ relname: string }>(
    "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition AND NOT (relname = ANY($2)) ORDER BY relname",
    [live, PER_SCHEMA_TABLES],
  );
  return rows.map((r) => r.relname);
}

/**
 * Moving a carried table keeps its foreign keys and column types pointing where they pointed. If
 * those are projected tables or types of the live schema, dropping the retired schema would cut
 * them, so such a schema is refused.
 */
async function assertCarriedTablesStandAlone(
  client: PoolClient,
  live: string,
  carried: readonly string[],
): Promise<void> {
  if (carried.length === 0) return;
  const { rows } = await client.query<{ problem: string }>(
    `WITH carried AS (SELECT oid FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = ANY($2))
     SELECT format('foreign key %s', c.conname) AS problem
       FROM pg_constraint c JOIN pg_class f ON f.oid = c.confrelid
      WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace AND f.relnamespace = $1::regnamespace
        AND (c.conrelid IN (SELECT oid FROM carried)) <> (c.confrelid IN (SELECT oid FROM carried))
     UNION ALL
     SELECT format('column %s.%s of type %s', cl.relname, a.attname, format_type(a.atttypid, a.atttypmod))
       FROM pg_attribute a JOIN pg_class cl ON cl.oid = a.attrelid JOIN pg_type ty ON ty.oid = a.atttypid
      WHERE cl.oid IN (SELECT oid FROM carried) AND a.attnum > 0 AND NOT a.attisdropped
        AND ty.typnamespace = $1::regnamespace`,
    [live, carried],
  );
  if (rows.length > 0) {
    throw new RebuildError(
      `schema ${live} has tables that are not projected from the log (${carried.join(', ')}) and are tied to it ` +
        `(${rows.map((r) => r.problem).join('; ')}); the rebuild cannot move them safely, so it stops`,
    );
  }
}

/** Refuses to retire a live schema that holds what the migrations do not create: dropping it would lose it. */
async function assertOnlyReadModel(client: PoolClient, live: string, rebuild: string): Promise<void> {
  const expected = await objectsIn(client, rebuild);
  const foreign = [...(await objectsIn(client, live))].filter((object) => !expected.has(object)).sort();
  if (foreign.length > 0) {
    throw new RebuildError(
      `schema ${live} holds objects the read model's migrations do not create (${foreign.join(', ')}); the rebuild would drop them ` +
        'with the old schema, so it stops. Move them to another schema, make them a migration, or give the read model a schema of ' +
        'its own (RELAY_DATABASE_SCHEMA).',
    );
  }
}

/** Gives `to` the owner and grants of `from`, and its tables the grants of the tables of the same name. */
async function copyPrivileges(client: PoolClient, from: string, to: string): Promise<void> {
  const { rows } = await client.query<{ statement: string }>(
    `SELECT format('ALTER SCHEMA %I OWNER TO %I', $2::text, pg_get_userbyid(n.nspowner)) AS statement
       FROM pg_namespace n WHERE n.nspname = $1
     UNION ALL
     SELECT format('GRANT %s ON SCHEMA %I TO %s%s', a.privilege_type, $2::text,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
       FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a WHERE n.nspname = $1
     UNION ALL
     SELECT format('GRANT %s ON %s %I.%I TO %s%s', a.privilege_type, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   $2::text, c.relname,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
       FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
      WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
        AND EXISTS (SELECT 1 FROM pg_class t WHERE t.relnamespace = $2::regnamespace AND t.relname = c.relname)`,
    [from, to],
  );
  for (const { statement } of rows) await client.query(statement);
}

/**
 * Decodes one record as the live consumer does: one that can never be decoded carries no event
 * (the live consumer dead-letters it); a registry that still does not answer after retries fails
 * the rebuild, which can be run again.
 */
async function decodeRecord(
  codec: EventCodec,
  topic: string,
  partition: number,
  message: kafkajs.KafkaMessage,
  log: Logger,
): Promise<ConsumedRecord> {
  const base = { topic, partition, offset: message.offset, key: message.key?.toString() ?? null };
  try {
    const event = await withRetry(
      async () => {
        if (!message.value) throw new UndecodableEventError('the record has no value');
        return codec.decode(message.value);
      },
      { attempts: 3, backoff: APPLY_BACKOFF },
    );
    return { ...base, event };
  } catch (error) {
    if (!isPoison(error)) throw error;
    log.warn(
      { topic, partition, offset: message.offset, err: error },
      'record not decoded; the rebuild skips it as the live projector does',
    );
    return base;
  }
}

/**
 * The projector's handler with the live consumer's failure rules: a passing failure is retried
 * (and finally fails the rebuild, which can be rerun); an event Postgres refuses is applied alone
 * and, if it still fails, skipped with its offset counted, as the live projector dead-letters it.
 */
function tolerant(project: BatchHandler, log: Logger, onSkip: () => void): BatchHandler {
  return (records, topic, partition) =>
    applyIsolatingPoison(project, records, topic, partition, {
      attempts: 5,
      onPoison: (record, failure) => {
        onSkip();
        log.warn(
          { topic, partition, offset: record.offset, err: failure },
          'event not applicable; the rebuild skips it as the live projector does',
        );
      },
    });
}

function interrupted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () =>
      reject(
        new RebuildInterrupted(
          'the rebuild was interrupted; the live read model is unchanged, run it again to start over',
        ),
      );
    if (signal?.aborted) fail();
    signal?.addEventListener('abort', fail, { once: true });
  });
}

const isLockTimeout = (error: unknown): boolean => (error as { code?: unknown }).code === '55P03';

/** The connections a rebuild uses (app/resources.ts opens them). */
export interface RebuildResources {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly topics: Topics;
  readonly kafka: KafkaClient;
  readonly codec: EventCodec;
  readonly pool: Pool;
}

/** Rebuilds the read model (see the comment at the top of this file); resolves once the switch is done. */
export async function rebuildReadModel(
  resources: RebuildResources,
  options: RebuildOptions = {},
): Promise<RebuildResult> {
  const { config, kafka, codec, topics, pool, log } = resources;
  const live = config.postgres.schema;
  const rebuild = rebuildSchemaOf(live);
  const report: RebuildReporter = options.reporter ?? { phase: () => undefined, progress: () => undefined };
  const lockedCatchUpMax = options.lockedCatchUpMax ?? 5_000;
  const started = Date.now();
  const stop = interrupted(options.signal);
  stop.catch(() => undefined);
  const guard = await pool.connect();
  let rebuildPool: Pool | undefined;
  let reader: LogReader | undefined;
  let switched = false;
  let holdsLock = false;
  let skipped = 0;
  const lockKey = `relay.rebuild:${live}`; // advisory locks are per database

  const release = async () => {
    await reader?.stop();
    await rebuildPool?.end().catch(() => undefined);
    reader = undefined;
    rebuildPool = undefined;
  };

  try {
    const { rows: locked } = await guard.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [
      lockKey,
    ]);
    if (!locked[0]?.ok) throw new RebuildError(`another rebuild of schema ${live} is running; wait for it to finish`);
    holdsLock = true;

    const { rows: leftovers } = await guard.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname = $1 OR (starts_with(nspname, $2) AND substr(nspname, length($2) + 1) ~ '^[0-9]{14}$')",
      [rebuild, retiredPrefixOf(live)],
    );
    for (const { nspname } of leftovers) {
      report.phase(`dropping ${nspname}, left by an earlier run`);
      await guard.query(`DROP SCHEMA ${q(nspname)} CASCADE`);
    }

    report.phase(`creating schema ${rebuild} and applying the migrations`);
    await migrate(pool, rebuild, log);
    const liveExists = await schemaExists(guard, live);
    if (liveExists) {
      await assertOnlyReadModel(guard, live, rebuild);
      await assertCarriedTablesStandAlone(guard, live, await carriedTables(guard, live));
      await copyPrivileges(guard, live, rebuild);
    }

    const ranges = await planRanges(
      kafka,
      [topics.mailbox, topics.peers, topics.anchors],
      { kind: 'beginning' },
      { kind: 'now' },
    );
    // Mailbox retention that outlasts a message's lifetime plus the purge delay deletes only
    // records of messages the live read model has purged already: such a truncation loses nothing.
    const mailboxRetentionMs = Number(await topicConfigValue(kafka, topics.mailbox, 'retention.ms'));
    const mailboxOutlivesRows =
      mailboxRetentionMs >= (config.expiry.messageTtlSeconds + config.expiry.purgeAfterSeconds) * 1000;
    const truncated = ranges
      .filter((r) => r.start > 0n && !(r.topic === topics.mailbox && mailboxOutlivesRows))
      .map((r) => `${r.topic}/${r.partition} starts at ${r.start}`);
    if (truncated.length > 0 && !options.allowTruncatedLog) {
      throw new RebuildError(
        `the log no longer holds its oldest records (${truncated.join(', ')}), so a rebuild would lose what the live read model ` +
          'has from them; pass --allow-truncated-log to rebuild anyway',
      );
    }

    rebuildPool = createPool(config, {
      options: `-c search_path=${rebuild}`,
      max: 4,
      application_name: 'relay-rebuild',
    });
    rebuildPool.on('error', (error) => log.warn({ err: error }, 'idle Postgres connection of the rebuild failed'));
    const project = tolerant(postgresProjector(rebuildPool, undefined, PROJECTION_NAME), log, () => skipped++);
    const activeReader = new LogReader(kafka, {
      groupId: throwawayGroupId(config.kafka.groupPrefix, 'rebuild'),
      concurrency: 3,
      log,
    });
    reader = activeReader;
    const total = () => activeReader.recordsRead + (activeReader.remaining() ?? 0);
    const snapshot = rangeSize(ranges) ?? 0;
    report.phase(`replaying ${snapshot.toLocaleString('en-US')} records from the earliest offsets into ${rebuild}`);
    await activeReader.start(ranges, async (topic, partition, messages) => {
      const records = await Promise.all(messages.map((m) => decodeRecord(codec, topic, partition, m, log)));
      await project(records, topic, partition);
      report.progress(activeReader.recordsRead + messages.length, total());
    });
    await Promise.race([activeReader.whenDone(), stop]);

    const rebuiltTopics = new Set([topics.mailbox, topics.peers, topics.anchors]);
    const extendTo = (rows: readonly CheckpointRow[]): number => {
      const foreign = rows.filter((r) => !rebuiltTopics.has(r.topic)).map((r) => r.topic);
      if (foreign.length > 0)
        throw new RebuildError(
          `the live checkpoints cover topics the rebuild does not read: ${[...new Set(foreign)].join(', ')}`,
        );
      const targets = toOffsets(rows);
      const gap = gapTo(targets, activeReader.positions());
      activeReader.extend(targets);
      report.progress(activeReader.recordsRead, total());
      return gap;
    };

    if (liveExists) {
      // Without a lock: follow the live projector until the locked catch-up will be short.
      for (let round = 0; round < 10; round++) {
        const gap = extendTo(await readCheckpoints(pool, live));
        await Promise.race([activeReader.whenDone(), stop]);
        if (gap <= lockedCatchUpMax) break;
      }
    }

    // The live expiry role has deleted settled messages older than the purge delay; so does the
    // rebuild, or the switch would bring them back. Rows settled since its last pass are deleted by
    // its next one, in either schema.
    const purged = await purgeSettledAtOnce(rebuildPool, config.expiry.purgeAfterSeconds);
    if (purged > 0)
      report.phase(
        `left out ${purged.toLocaleString('en-US')} delivered or expired messages past RELAY_PURGE_AFTER_SECONDS`,
      );

    const retired = retiredSchemaOf(live, new Date());
    let pausedMs = 0;
    // A switch that waited too long for the live projector's lock is rolled back and tried again.
    await withRetry(
      async () => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query(`SET LOCAL lock_timeout = ${Math.round(options.lockTimeoutMs ?? 10_000)}`);
          let lockedAt = Date.now();
          if (liveExists) {
            report.phase(`switching: pausing the live projector and catching up to its checkpoints`);
            await client.query(`LOCK TABLE ${q(live)}.projection_checkpoints IN EXCLUSIVE MODE`);
            lockedAt = Date.now();
            const liveCheckpoints = await readCheckpoints(client, live, true);
            extendTo(liveCheckpoints);
            await Promise.race([activeReader.whenDone(), stop]);
            const rebuilt = toOffsets(await readCheckpoints(client, rebuild));
            const behind = gapTo(toOffsets(liveCheckpoints), rebuilt);
            if (behind > 0)
              throw new Error(`the rebuild is ${behind} records behind the live checkpoints after catching up`);
            await assertOnlyReadModel(client, live, rebuild);
            const carried = await carriedTables(client, live);
            await assertCarriedTablesStandAlone(client, live, carried);
            for (const table of carried) {
              await client.query(`DROP TABLE IF EXISTS ${q(rebuild)}.${q(table)} CASCADE`);
              await client.query(`ALTER TABLE ${q(live)}.${q(table)} SET SCHEMA ${q(rebuild)}`);
            }
            await client.query(`ALTER SCHEMA ${q(live)} RENAME TO ${q(retired)}`);
          }
          await client.query(`ALTER SCHEMA ${q(rebuild)} RENAME TO ${q(live)}`);
          await client.query('COMMIT');
          switched = true;
          pausedMs = Date.now() - lockedAt;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      },
      {
        attempts: 3,
        backoff: () => 0,
        isRetriable: isLockTimeout,
        onRetry: () => report.phase('the live projector held its lock too long; trying the switch again'),
      },
    );
    report.phase(`switched: ${live} now holds the rebuilt read model (the live projector was paused ${pausedMs} ms)`);
    const events = activeReader.recordsRead;
    await release();

    if (liveExists && !options.keepRetired) {
      report.phase(`dropping the old read model (${retired})`);
      await guard.query(`DROP SCHEMA ${q(retired)} CASCADE`);
    }
    return {
      schema: live,
      events,
      skipped,
      retired: liveExists && options.keepRetired ? retired : null,
      pausedMs,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (error) {
    await release();
    // Tidy up a failed run (a crash leaves the schema behind, and the next run drops it).
    if (holdsLock && !switched) await guard.query(`DROP SCHEMA IF EXISTS ${q(rebuild)} CASCADE`).catch(() => undefined);
    throw error;
  } finally {
    if (holdsLock) await guard.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
    guard.release();
  }
}
