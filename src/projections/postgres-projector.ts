import type { BatchHandler, ConsumedRecord } from '../kafka/consumer-service.js';
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
  return async (records, topic, partition) => {
    if (records.length === 0) return;
    let applied: readonly ConsumedRecord[] = [];
    await inTransaction(pool, async (client) => {
      const next = BigInt(await lockCheckpoint(client, projection, topic, partition));
      const fresh = records.filter((r) => BigInt(r.offset) >= next);
      const last = fresh[fresh.length - 1];
      if (!last) return;
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
          [projection, topic, partition, String(BigInt(last.offset) + 1n)],
        ),
      );
      applied = fresh;
    });
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
  if (plan.messages.length > 0) {
    const m = plan.messages;
    await client.query(
      prepared(
        'relay_insert_messages',
        `INSERT INTO messages (id, sender_address, receiver_address, encrypted_content, message_type, timestamp,
                             content_sha256, signature, accepted_at, kafka_partition, kafka_offset, expires_at)
       SELECT id, sender, receiver, content, type, to_timestamp(accepted_ms / 1000.0::float8) AT TIME ZONE 'UTC', sha, sig,
              to_timestamp(accepted_ms / 1000.0::float8), part, off, to_timestamp(expires_ms / 1000.0::float8)
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::bigint[], $9::int[], $10::bigint[], $11::bigint[])
           AS t(id, sender, receiver, content, type, sha, sig, accepted_ms, part, off, expires_ms)
       ON CONFLICT (id) DO NOTHING`,
        [
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
        ],
      ),
    );
  }
  if (plan.messages.length > 0) {
    // An anchor projected before its messages (the topics are read independently) left their
    // places in message_anchors: fill them in now. The shared lock pairs with writeAnchor's
    // exclusive one, so that of two concurrent transactions (two projector processes, or a
    // rebuild's parallel partitions) the later one sees the other's rows.
    // Its own statement: in READ COMMITTED each statement reads from a snapshot taken when it
    // starts, so only a statement after the lock sees what the holder of the other lock wrote.
    await client.query(
      prepared('relay_anchor_lock_shared', 'SELECT pg_advisory_xact_lock_shared(hashtext(current_schema() || $1))', [
        ANCHOR_LOCK,
      ]),
    );
    // Neither statement is prepared: a plan cached while a table was small scans it whole, batch
    // after batch, as it grows; planned each time, they follow the ids through message_anchors'
    // key. The update is rare (a rebuild, or a projector behind the anchoring), and planning its
    // join cost more than anything else in the transaction, so a one-table look comes first.
    const ids = plan.messages.map((r) => r.id);
    const { rowCount } = await client.query(
      'SELECT 1 FROM message_anchors WHERE message_id = ANY($1::uuid[]) LIMIT 1',
      [ids],
    );
    if (rowCount) {
      await client.query(
        `UPDATE messages m SET blockchain_txid = a.tx_hash, anchor_batch_id = a.batch_id, anchor_leaf_index = ma.leaf_index
           FROM message_anchors ma JOIN anchors a ON a.batch_id = ma.batch_id
          WHERE ma.message_id = ANY($1::uuid[]) AND m.id = ma.message_id AND m.anchor_batch_id IS NULL`,
        [ids],
      );
    }
  }
  for (const a of plan.anchors) await writeAnchor(client, a);
  if (plan.deliveries.length > 0) {
    await client.query(
      `UPDATE messages SET delivered = TRUE, delivered_at = d.at
         FROM unnest($1::uuid[], $2::timestamptz[]) AS d(id, at)
        WHERE messages.id = d.id AND NOT messages.delivered AND NOT messages.expired`,
      [plan.deliveries.map((d) => d.key), plan.deliveries.map((d) => iso(d.at))],
    );
  }
  if (plan.expiries.length > 0) {
    await client.query(
      `UPDATE messages SET expired = TRUE, expired_at = d.at
         FROM unnest($1::uuid[], $2::timestamptz[]) AS d(id, at)
        WHERE messages.id = d.id AND NOT messages.delivered AND NOT messages.expired`,
      [plan.expiries.map((d) => d.key), plan.expiries.map((d) => iso(d.at))],
    );
  }
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
