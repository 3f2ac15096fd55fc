import { randomUUID } from 'node:crypto';
import type { RelayEvent } from '../../../src/events/types.js';
import type { ConsumedRecord } from '../../../src/kafka/consumer-service.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { postgresProjector } from '../../../src/projections/postgres-projector.js';
import { openTestContext, type TestContext } from '../../helpers/context.js';
import { messageSent } from '../../helpers/events.js';

// The projector against the real PostgreSQL: anchors and their messages come from two topics read
// independently, so either can be projected first, and the rows must end up the same.
describe('postgresProjector (real PostgreSQL)', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await openTestContext('projector');
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  const offsets = new Map<string, number>();
  const record = (topic: string, event: RelayEvent): ConsumedRecord => {
    const offset = offsets.get(topic) ?? 0;
    offsets.set(topic, offset + 1);
    return { topic, partition: 0, offset: String(offset), key: 'k', event };
  };
  const sent = (messageId: string) => messageSent({ message_id: messageId, expires_at: Date.now() + 60_000 });
  const anchored = (messageIds: string[]): RelayEvent => ({
    type: 'AnchorCommitted',
    data: {
      event_id: randomUUID(),
      occurred_at: Date.now(),
      root: '0x' + 'ab'.repeat(32),
      tree_size: messageIds.length,
      chain_id: 31337,
      contract: '0x' + '11'.repeat(20),
      tx_hash: '0x' + randomUUID().replaceAll('-', '').repeat(2),
      block_number: 7,
      block_hash: '0x' + 'cd'.repeat(32),
      block_time: Date.now(),
      mailbox_topic: ctx.topics.mailbox,
      ranges: [],
      message_ids: messageIds,
      leaf_hashes: Buffer.alloc(32 * messageIds.length, 1),
    },
  });
  const anchorColumns = async (ids: string[]) =>
    (
      await ctx.pool.query<{ id: string; blockchain_txid: string | null; anchor_leaf_index: number | null }>(
        'SELECT id, blockchain_txid, anchor_leaf_index FROM messages WHERE id = ANY($1::uuid[]) ORDER BY anchor_leaf_index',
        [ids],
      )
    ).rows;

  it('fills in the anchor columns of messages projected after their anchor, and of those projected before', async () => {
    const project = postgresProjector(ctx.pool);
    const early = [randomUUID(), randomUUID()];
    const late = [randomUUID(), randomUUID()];
    // Messages first, then their anchor.
    await project(
      early.map((id) => record(ctx.topics.mailbox, sent(id))),
      ctx.topics.mailbox,
      0,
    );
    const first = anchored(early);
    await project([record(ctx.topics.anchors, first)], ctx.topics.anchors, 0);
    // An anchor first, then its messages.
    const second = anchored(late);
    await project([record(ctx.topics.anchors, second)], ctx.topics.anchors, 0);
    await project(
      late.map((id) => record(ctx.topics.mailbox, sent(id))),
      ctx.topics.mailbox,
      0,
    );

    const txOf = (event: RelayEvent) => (event.type === 'AnchorCommitted' ? event.data.tx_hash : undefined);
    expect(await anchorColumns(early)).toEqual(
      early.map((id, i) => ({ id, blockchain_txid: txOf(first), anchor_leaf_index: i })),
    );
    expect(await anchorColumns(late)).toEqual(
      late.map((id, i) => ({ id, blockchain_txid: txOf(second), anchor_leaf_index: i })),
    );
  });

  it('applies each record once: a batch given again after its checkpoint moved changes nothing, nor counts', async () => {
    const metrics = new Metrics();
    const project = postgresProjector(ctx.pool, metrics);
    const topic = `${ctx.topics.mailbox}.again`;
    const batch = [record(topic, sent(randomUUID())), record(topic, sent(randomUUID()))];
    await project(batch, topic, 3);
    await project(batch, topic, 3);
    const { rows } = await ctx.pool.query<{ next_offset: string }>(
      'SELECT next_offset FROM projection_checkpoints WHERE topic = $1 AND partition = 3',
      [topic],
    );
    expect(rows).toEqual([{ next_offset: String(Number(batch[1]?.offset) + 1) }]);
    const ids = batch.map((r) => (r.event?.type === 'MessageSent' ? r.event.data.message_id : ''));
    const count = await ctx.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::uuid[])',
      [ids],
    );
    expect(count.rows[0]?.n).toBe(2);
    const projected = await metrics.eventsProjected.get();
    expect(projected.values).toEqual([{ labels: { projection: 'read_model', type: 'MessageSent' }, value: 2 }]);
    const delays = await metrics.projectionDelay.get();
    expect(delays.values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(2);
  });

  it('never moves a checkpoint back: a batch another projector applied meanwhile is skipped, not written again', async () => {
    // Two projector processes on one partition, as during a rebalance: each remembers where it
    // left the checkpoint, and only the checkpoint in PostgreSQL decides what is still to apply.
    const topic = `${ctx.topics.mailbox}.handover`;
    const metrics = new Metrics();
    const mine = postgresProjector(ctx.pool, metrics);
    const theirs = postgresProjector(ctx.pool);
    const records = Array.from({ length: 10 }, () => record(topic, sent(randomUUID())));
    const checkpoint = async () =>
      (
        await ctx.pool.query<{ next_offset: string }>(
          'SELECT next_offset FROM projection_checkpoints WHERE topic = $1 AND partition = 0',
          [topic],
        )
      ).rows[0]?.next_offset;

    await mine(records.slice(0, 2), topic, 0);
    await mine(records.slice(2, 4), topic, 0);
    await theirs(records.slice(2, 8), topic, 0);
    expect(await checkpoint()).toBe('8');
    // Records 4 and 5 again, as this projector would get them back after the rebalance.
    await mine(records.slice(4, 6), topic, 0);
    expect(await checkpoint()).toBe('8');
    await mine(records.slice(8, 10), topic, 0);
    expect(await checkpoint()).toBe('10');

    const ids = records.map((r) => (r.event?.type === 'MessageSent' ? r.event.data.message_id : ''));
    const { rows } = await ctx.pool.query<{ kafka_offset: string }>(
      'SELECT kafka_offset FROM messages WHERE id = ANY($1::uuid[]) ORDER BY kafka_offset',
      [ids],
    );
    expect(rows.map((r) => Number(r.kafka_offset))).toEqual(records.map((r) => Number(r.offset)));
    // This projector applied records 0-3 and 8-9; the ones the other applied are not counted here.
    const projected = await metrics.eventsProjected.get();
    expect(projected.values).toEqual([{ labels: { projection: 'read_model', type: 'MessageSent' }, value: 6 }]);
  });
});
