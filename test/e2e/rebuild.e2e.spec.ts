import { randomBytes, randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { consumerService } from '../../src/app/roles.js';
import { loadConfig } from '../../src/config/config.js';
import type { RelayEvent } from '../../src/events/types.js';
import { openResources, type Resources } from '../../src/app/resources.js';
import { runServices } from '../../src/lifecycle/service.js';
import { createLogger } from '../../src/observability/logger.js';
import { migrate } from '../../src/postgres/migrate.js';
import type { Pool } from '../../src/postgres/pool.js';
import { PROJECTED_TABLES, rebuildReadModel, rebuildSchemaOf } from '../../src/replay/rebuild.js';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';
import { collect, runCli, startCli } from '../int/replay/cli.js';

const BULK_MESSAGES = 30_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A second projector on the same topics into a schema of its own, never rebuilt: the reference. */
interface Control {
  readonly resources: Resources;
  readonly schema: string;
  stop(): Promise<void>;
}

async function startControl(env: Readonly<Record<string, string>>): Promise<Control> {
  const config = loadConfig({
    ...env,
    RELAY_DATABASE_SCHEMA: `${env['RELAY_DATABASE_SCHEMA']}_control`,
    RELAY_CONSUMER_GROUP_PREFIX: `${env['RELAY_CONSUMER_GROUP_PREFIX']}-control`,
  });
  const log = createLogger('warn', { test: 'rebuild-control' });
  const resources = openResources(config, log);
  await migrate(resources.pool, config.postgres.schema, log);
  await resources.codec.registerAll();
  const projector = consumerService(resources, 'projector');
  const controller = new AbortController();
  const running = runServices([projector], controller.signal, log);
  running.catch(() => undefined);
  await projector.joined();
  return {
    resources,
    schema: config.postgres.schema,
    async stop() {
      controller.abort();
      await running.catch(() => undefined);
      await resources.pool.query(`DROP SCHEMA IF EXISTS "${config.postgres.schema}" CASCADE`);
      await resources.close();
    },
  };
}

/** The read model's rows, in a stable order; checkpoints without their wall-clock updated_at. */
async function readModel(pool: Pool, schema: string) {
  const rows = async (sql: string) => (await pool.query<Record<string, unknown>>(sql)).rows;
  const peerColumns = (
    await rows(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = 'peers' ORDER BY ordinal_position`,
    )
  ).map((r) => String(r['column_name']));
  return {
    messages: await rows(`SELECT * FROM "${schema}".messages ORDER BY id`),
    peers: await rows(`SELECT ${peerColumns.map((c) => `"${c}"`).join(', ')} FROM "${schema}".peers ORDER BY address`),
    checkpoints: await rows(
      `SELECT projection, topic, partition, next_offset FROM "${schema}".projection_checkpoints ORDER BY projection, topic, partition`,
    ),
  };
}

/** Tables of the schema that are not projected from the log (API keys and the like), with their rows. */
async function carriedTables(pool: Pool, schema: string): Promise<Record<string, unknown[]>> {
  const { rows } = await pool.query<{ relname: string }>(
    "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' AND NOT (relname = ANY($2)) ORDER BY relname",
    [schema, [...PROJECTED_TABLES, 'schema_migrations']],
  );
  const result: Record<string, unknown[]> = {};
  for (const { relname } of rows)
    result[relname] = (await pool.query(`SELECT * FROM "${schema}"."${relname}" ORDER BY 1`)).rows;
  return result;
}

// `relay rebuild read_model` replays the log into a new schema while the live projector keeps
// running and the ingress keeps writing, then swaps schemas under a short lock. The result must be
// row for row what a projector that was never rebuilt holds.
describe('relay rebuild read_model', () => {
  let relay: RunningRelay;
  let control: Control;
  let live: string;
  const peers = Array.from({ length: 12 }, (_, i) => TestPeer.create(i % 2 ? 'ES256' : 'EdDSA'));

  /** Waits until a projection's checkpoints reach the log end offsets of both topics. */
  const settled = async (pool: Pool, schema: string) => {
    const admin = relay.ctx.kafka.admin();
    await admin.connect();
    const ends = new Map<string, string>();
    for (const topic of [relay.ctx.topics.mailbox, relay.ctx.topics.peers]) {
      for (const p of await admin.fetchTopicOffsets(topic))
        if (p.high !== '0') ends.set(`${topic}/${p.partition}`, p.high);
    }
    await admin.disconnect();
    await eventually(
      async () => {
        const { rows } = await pool.query<{ topic: string; partition: number; next_offset: string }>(
          `SELECT topic, partition, next_offset FROM "${schema}".projection_checkpoints`,
        );
        const at = new Map(rows.map((r) => [`${r.topic}/${r.partition}`, r.next_offset]));
        return [...ends].every(([key, high]) => at.get(key) === high) ? true : undefined;
      },
      120_000,
      `projection in ${schema} to reach the end of the log`,
    );
  };

  const bothSettled = async () => {
    await settled(relay.ctx.pool, live);
    await settled(control.resources.pool, control.schema);
  };

  /** Sends messages between the peers through the API (and acknowledges some) until stopped. */
  const traffic = (signal: AbortSignal) => {
    let sent = 0;
    const running = (async () => {
      const pending: { to: TestPeer; id: string }[] = [];
      for (let round = 0; !signal.aborted; round++) {
        const messages = await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const from = peers[(round + i) % peers.length] as TestPeer;
            const to = peers[(round + i + 1) % peers.length] as TestPeer;
            const message = await from.message(to.address);
            pending.push({ to, id: message['message_id'] as string });
            return message;
          }),
        );
        const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay/batch', { messages });
        expect(answer.status).toBe(200);
        sent += messages.length;
        if (round % 3 === 2) {
          const older = pending.splice(0, 10);
          for (const { to, id } of older)
            await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', { address: to.address, message_ids: [id] });
        }
        if (round % 7 === 0) {
          const peer = peers[round % peers.length] as TestPeer;
          await call(
            relay.baseUrl,
            'POST',
            '/api/v1/peer/register',
            await peer.registration({ connection_info: { round } }),
          );
        }
        await pause(20);
      }
    })();
    return { done: running, sent: () => sent };
  };

  beforeAll(async () => {
    relay = await startRelay('rebuild');
    live = relay.ctx.config.postgres.schema;
    control = await startControl(relay.ctx.env);
    for (const peer of peers)
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);

    // Bulk history, produced directly so the rebuild has enough to read to be caught in the act.
    const producer = relay.ctx.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    for (let start = 0; start < BULK_MESSAGES; start += 2500) {
      const events: RelayEvent[] = [];
      for (let i = start; i < start + 2500; i++) {
        const to = (peers[i % peers.length] as TestPeer).address;
        const id = randomUUID();
        const at = Date.now();
        events.push({
          type: 'MessageSent',
          data: {
            event_id: randomUUID(),
            occurred_at: at,
            message_id: id,
            from_address: (peers[(i + 3) % peers.length] as TestPeer).address,
            to_address: to,
            message_type: 'text',
            encrypted_content: `bulk-${i}`,
            content_sha256: randomBytes(8).toString('hex'),
            signature: 's',
            node_id: 'bulk',
          },
        });
        if (i % 4 === 0)
          events.push({
            type: 'MessageDelivered',
            data: { event_id: randomUUID(), occurred_at: at + 1, message_id: id, to_address: to, via: 'stream' },
          });
      }
      await producer.send({
        topic: relay.ctx.topics.mailbox,
        acks: -1,
        messages: events.map((e) => ({
          key: (e.data as { to_address: string }).to_address,
          value: relay.ctx.codec.encode(e),
        })),
      });
    }
    await producer.disconnect();
    await bothSettled();

    // State that is not projected from the log and must survive the switch (once the security migration has made the table).
    const { rows } = await relay.ctx.pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [
      `"${live}".api_keys`,
    ]);
    if (rows[0]?.t) {
      await relay.ctx.pool.query(
        `INSERT INTO "${live}".api_keys (id, name, secret_sha256, scopes) VALUES ('rk_test', 'rebuild test', $1, '{send}')`,
        [randomBytes(32)],
      );
    }
  }, 240_000);

  afterAll(async () => {
    await control?.stop();
    await relay?.stop();
  });

  const leftoverSchemas = async () =>
    (
      await relay.ctx.pool.query<{ nspname: string }>(
        'SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) AND nspname <> $1 AND nspname <> $2',
        [live, control.schema],
      )
    ).rows.map((r) => r.nspname);

  it('rebuilds while the live projector runs and the ingress writes, and ends equal to a projector never rebuilt', async () => {
    const carriedBefore = await carriedTables(relay.ctx.pool, live);
    const stopTraffic = new AbortController();
    const load = traffic(stopTraffic.signal);
    await pause(300);
    const sentBefore = load.sent();
    const phases: string[] = [];
    const result = await rebuildReadModel(relay.ctx, {
      reporter: { phase: (text) => phases.push(text), progress: () => undefined },
    });
    const sentDuring = load.sent() - sentBefore;
    await pause(500); // more traffic, now into the rebuilt schema
    stopTraffic.abort();
    await load.done;

    expect(sentDuring).toBeGreaterThan(0);
    expect(result.events).toBeGreaterThan(BULK_MESSAGES);
    expect(result.retired).toBeNull();
    expect(result.pausedMs).toBeLessThan(10_000);
    expect(phases.some((p) => p.startsWith('switched'))).toBe(true);
    expect(await leftoverSchemas()).toEqual([]);

    await bothSettled();
    const rebuilt = await readModel(relay.ctx.pool, live);
    const reference = await readModel(control.resources.pool, control.schema);
    expect(rebuilt.messages.length).toBeGreaterThan(BULK_MESSAGES);
    expect(rebuilt.messages).toEqual(reference.messages);
    expect(rebuilt.peers).toEqual(reference.peers);
    expect(rebuilt.checkpoints).toEqual(reference.checkpoints);
    expect(await carriedTables(relay.ctx.pool, live)).toEqual(carriedBefore);
  }, 300_000);

  it('gives tables equal to the live ones row for row (the old schema kept to compare)', async () => {
    await bothSettled();
    const result = await rebuildReadModel(relay.ctx, { keepRetired: true });
    expect(result.retired).toMatch(new RegExp(`^${live}_retired_\\d{14}$`));
    try {
      const before = await readModel(relay.ctx.pool, result.retired as string);
      const after = await readModel(relay.ctx.pool, live);
      expect(after.messages.length).toBeGreaterThan(BULK_MESSAGES);
      expect(after).toEqual(before);
    } finally {
      await relay.ctx.pool.query(`DROP SCHEMA IF EXISTS "${result.retired}" CASCADE`);
    }
  }, 300_000);

  it('runs again after `relay rebuild read_model` was killed mid-way', async () => {
    const rebuild = rebuildSchemaOf(live);
    const child = startCli(['rebuild', 'read_model'], relay.ctx.env);
    const exited = collect(child);
    await eventually(
      async () => {
        const { rows } = await relay.ctx.pool
          .query<{ n: number }>(`SELECT count(*)::int AS n FROM "${rebuild}".messages`)
          .catch(() => ({ rows: [] as { n: number }[] }));
        return (rows[0]?.n ?? 0) > 0 ? true : undefined;
      },
      60_000,
      'the rebuild to write its first rows',
    );
    child.kill('SIGKILL');
    await exited;
    expect(await leftoverSchemas()).toEqual([rebuild]); // killed before the switch: the live schema is untouched

    const again = await runCli(['rebuild', 'read_model'], relay.ctx.env, 240_000);
    expect(again.stderr).toContain(`dropping ${rebuild}, left by an earlier run`);
    expect(again.stderr).toMatch(/relay rebuild: done in [\d.]+ s: [\d,]+ records replayed/);
    expect(again.code).toBe(0);
    expect(await leftoverSchemas()).toEqual([]);

    await bothSettled();
    expect(await readModel(relay.ctx.pool, live)).toEqual(await readModel(control.resources.pool, control.schema));
  }, 300_000);
});
