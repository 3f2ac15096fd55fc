import type { BatchHandler, ConsumedRecord } from '../kafka/consumer-service.js';
import { TOPIC_OF } from '../events/topics.js';
import type { Metrics } from '../observability/metrics.js';
import { inTransaction, type Pool, type PoolClient } from '../postgres/pool.js';
import { planBatch, type AnchorRow, type ReadModelPlan } from './read-model.js';

export const PROJECTION_NAME = 'read_model';

/** The Postgres channel the projector notifies, in the transaction that moves a checkpoint. */
export const APPLIED_CHANNEL = 'relay_applied';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Applies batches to the Postgres read model exactly once: the rows and the partition's
 * checkpoint are written in one transaction, and records below the checkpoint are skipped, so a
 * crash at any point neither loses nor doubles an event.
 */
export function postgresProjector(pool: Pool, metrics?: Metrics, projection = PROJECTION_NAME): BatchHandler {
  // Where each partition's checkpoint stood after this projector's last commit. A mailbox batch
  // that starts from there is applied in one statement (relay_apply_mailbox), which checks that
  // the checkpoint has not moved since; any other batch, or one it refuses, takes the long way.
  const known = new Map<string, bigint>();
  return async (records, topic, partition) => {
    if (records.length === 0) return;
    const slot = `${topic}|${partition}`;
    const last = records[records.length - 1] as ConsumedRecord;
    const next = BigInt(last.offset) + 1n;
    let applied = await applyMailbox(pool, projection, topic, partition, known.get(slot), next, records);
    if (applied === undefined) {
      applied = [];
      await inTransaction(pool, async (client) => {
        const held = BigInt(await lockCheckpoint(client, projection, topic, partition));
        known.set(slot, held);
        const fresh = records.filter((r) => BigInt(r.offset) >= held);
        if (fresh.length === 0) return;
        await writePlan(client, planBatch(fresh));
        // The notification is delivered when this transaction commits, so a reader that waits on
        // it (CheckpointWatch) sees the rows it covers.
        await client.query(
          prepared(
            'relay_checkpoint_move',
            `WITH moved AS (
               UPDATE projection_checkpoints SET next_offset = $4, updated_at = now() WHERE projection = $1 AND topic = $2 AND partition = $3
               RETURNING next_offset)
             SELECT pg_notify('${APPLIED_CHANNEL}', format('%s %s %s %s %s', current_schema(), $1, $2, $3, next_offset)) FROM moved`,
            [projection, topic, partition, String(next)],
          ),
        );
        applied = fresh;
      });
    }
    if (applied.length > 0) known.set(slot, next);
    // Measured once the transaction has committed: the rows are readable from here on. Counted
    // per type and batch, and the labels bound once: prom-client hashes a label set per call.
    if (metrics && applied.length > 0) {
      const now = Date.now();
      const delay = metrics.projectionDelay.labels({ projection });
      const perType = new Map<string, number>();
      for (const r of applied) {
        if (!r.event) continue;
        perType.set(r.event.type, (perType.get(r.event.type) ?? 0) + 1);
        delay.observe(Math.max(0, now - r.event.data.occurred_at) / 1000);
      }
      for (const [type, count] of perType) metrics.eventsProjected.inc({ projection, type }, count);
    }
  };
}

/**
 * A batch of mailbox events whose partition's checkpoint this projector last left at `expected`,
 * in one statement and so one transaction. Returns the records it applied, or undefined when it
 * wrote nothing: the checkpoint is unknown or has moved, or the batch holds other events.
 */
async function applyMailbox(
  pool: Pool,
  projection: string,
  topic: string,
  partition: number,
  expected: bigint | undefined,
  next: bigint,
  records: readonly ConsumedRecord[],
): Promise<readonly ConsumedRecord[] | undefined> {
  if (expected === undefined) return undefined;
  // Decided before planning, so that a batch of another topic is planned once, on the long way.
  if (records.some((r) => r.event && TOPIC_OF[r.event.type] !== 'mailbox')) return undefined;
  const fresh = records.filter((r) => BigInt(r.offset) >= expected);
  if (fresh.length === 0) return undefined;
  const plan = planBatch(fresh);
  const { rows } = await pool.query<{ held: string | null }>(
    prepared('relay_apply_mailbox', `SELECT relay_apply_mailbox(${placeholders(21)}) AS held`, [
      APPLIED_CHANNEL,
      projection,
      topic,
      partition,
      String(expected),
      String(next),
      ...mailboxValues(plan),
    ]),
  );
  return rows[0]?.held === String(expected) ? fresh : undefined;
}

const placeholders = (n: number) => Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ');

/** relay_write_mailbox's arguments (migrations/006_mailbox_apply.sql) for a plan. */
function mailboxValues(plan: ReadModelPlan): unknown[] {
  const m = plan.messages;
  return [
    m.map((r) => r.id),
    m.map((r) => r.sender),
    m.map((r) => r.receiver),
    m.map((r) => r.content),
    m.map((r) => r.type),
    m.map((r) => r.contentSha256),
    m.map((r) => r.signature),
    // Milliseconds since the epoch, not ISO text: cheaper to write here and to read there.
    m.map((r) => r.acceptedAt),
    m.map((r) => r.partition),
    m.map((r) => r.offset),
    m.map((r) => r.expiresAt),
    plan.deliveries.map((d) => d.key),
    plan.deliveries.map((d) => iso(d.at)),
    plan.expiries.map((d) => d.key),
    plan.expiries.map((d) => iso(d.at)),
  ];
}

/**
 * Locks a partition's checkpoint row for this transaction and returns its next offset, creating
 * the row the first time. A plain row lock, not an upsert: the upsert's no-op update wrote a new
 * row version in every transaction, before the one that moves the checkpoint.
 */
async function lockCheckpoint(
  client: PoolClient,
  projection: string,
  topic: string,
  partition: number,
): Promise<string> {
  const values = [projection, topic, partition];
  const { rows } = await client.query<{ next_offset: string }>(
    prepared(
      'relay_checkpoint_lock',
      'SELECT next_offset FROM projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE',
      values,
    ),
  );
  if (rows[0]) return rows[0].next_offset;
  // The first batch of a partition: create the row, or lock the one a concurrent writer created.
  const created = await client.query<{ next_offset: string }>(
    prepared(
      'relay_checkpoint_create',
      `INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, 0)
       ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = projection_checkpoints.next_offset
       RETURNING next_offset`,
      values,
    ),
  );
  return created.rows[0]?.next_offset ?? '0';
}

/**
 * A named query: each connection parses and plans it once and then only binds and executes it.
 * The projector's statements run for every batch of every partition. Only statements whose plan
 * cannot go wrong as tables grow are named: key lookups and inserts (see the anchor update).
 */
const prepared = (name: string, text: string, values: unknown[]) => ({ name, text, values });

// relay_write_mailbox (migrations/006_mailbox_apply.sql) takes the same lock, shared.
const ANCHOR_LOCK = ':relay.anchors';

/** An anchored batch, each message's place in it, and the anchor columns of the messages already projected. */
async function writeAnchor(client: PoolClient, a: AnchorRow): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext(current_schema() || $1))', [ANCHOR_LOCK]);
  const { rowCount } = await client.query(
    `INSERT INTO anchors (batch_id, root, tree_size, chain_id, contract, tx_hash, block_number, block_hash, block_time, leaf_hashes, committed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (batch_id) DO NOTHING`,
    [
      a.batchId,
      a.root,
      a.treeSize,
      a.chainId,
      a.contract,
      a.txHash,
      a.blockNumber,
      a.blockHash,
      iso(a.blockTime),
      a.leafHashes,
      iso(a.committedAt),
    ],
  );
  if (rowCount === 0) return; // the same batch written again after a crash
  await client.query(
    `INSERT INTO message_anchors (message_id, batch_id, leaf_index)
     SELECT id, $2::uuid, (n - 1)::int FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)
     ON CONFLICT (message_id) DO NOTHING`,
    [a.messageIds, a.batchId],
  );
  await client.query(
    `UPDATE messages m SET blockchain_txid = $2, anchor_batch_id = ma.batch_id, anchor_leaf_index = ma.leaf_index
       FROM message_anchors ma
      WHERE ma.batch_id = $1 AND m.id = ma.message_id AND m.anchor_batch_id IS NULL`,
    [a.batchId, a.txHash],
  );
}

async function writePlan(client: PoolClient, plan: ReadModelPlan): Promise<void> {
  if (plan.messages.length > 0 || plan.deliveries.length > 0 || plan.expiries.length > 0) {
    await client.query(
      prepared('relay_write_mailbox', `SELECT relay_write_mailbox(${placeholders(15)})`, mailboxValues(plan)),
    );
  }
  for (const a of plan.anchors) await writeAnchor(client, a);
  if (plan.peers.length > 0) {
    const p = plan.peers;
    await client.query(
      `INSERT INTO peers (address, public_key, connection_info, encryption_key, registration, registered_at, updated_at,
                          kafka_partition, kafka_offset, signed_at)
       SELECT address, signing_key, info::jsonb, enc::jsonb, registration, first_at, at, part, off, signed_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::int[], $8::bigint[],
                     $9::timestamptz[], $10::timestamptz[])
           AS t(address, signing_key, info, enc, registration, at, part, off, first_at, signed_at)
       ON CONFLICT (address) DO UPDATE SET
         public_key = EXCLUDED.public_key, connection_info = EXCLUDED.connection_info,
         encryption_key = EXCLUDED.encryption_key, registration = EXCLUDED.registration,
         updated_at = EXCLUDED.updated_at, kafka_partition = EXCLUDED.kafka_partition, kafka_offset = EXCLUDED.kafka_offset,
         signed_at = EXCLUDED.signed_at
       -- only a registration signed later replaces the one held (see planBatch)
       WHERE peers.signed_at IS NULL OR peers.signed_at < EXCLUDED.signed_at`,
      [
        p.map((r) => r.address),
        p.map((r) => r.signingKey),
        p.map((r) => r.connectionInfo),
        p.map((r) => r.encryptionKey),
        p.map((r) => r.registration),
        p.map((r) => iso(r.at)),
        p.map((r) => r.partition),
        p.map((r) => r.offset),
        p.map((r) => iso(r.firstAt)),
        p.map((r) => iso(r.signedAt)),
      ],
    );
  }
  if (plan.presence.length > 0) {
    await client.query(
      `UPDATE peers SET is_online = x.online, last_seen = x.at AT TIME ZONE 'UTC'
         FROM unnest($1::text[], $2::boolean[], $3::timestamptz[]) AS x(address, online, at)
        WHERE peers.address = x.address AND (peers.last_seen IS NULL OR peers.last_seen <= x.at AT TIME ZONE 'UTC')`,
      [plan.presence.map((x) => x.key), plan.presence.map((x) => x.online), plan.presence.map((x) => iso(x.at))],
    );
  }
}
