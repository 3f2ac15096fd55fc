import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { RelayEvent } from '../../src/events/types.js';
import { eventually, openTestContext, type TestContext } from '../helpers/context.js';
import { exited, spawnRelay } from '../helpers/processes.js';
import { TestPeer } from '../helpers/peer.js';

const MESSAGES = 40_000;
const DELIVERED_EVERY = 4;

// Killing the projector at any moment and restarting it leaves every event applied exactly once:
// rows and checkpoints share a transaction, so a SIGKILL mid-batch loses or doubles nothing.
describe('the projector killed mid-batch', () => {
  let ctx: TestContext;
  const sentIds: string[] = [];
  const deliveredIds = new Set<string>();

  beforeAll(async () => {
    ctx = await openTestContext('crash');
    const recipients = Array.from({ length: 200 }, () => TestPeer.create().address);
    const sender = TestPeer.create().address;
    const producer = ctx.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    for (let start = 0; start < MESSAGES; start += 2000) {
      const events: RelayEvent[] = [];
      for (let i = start; i < start + 2000; i++) {
        const id = randomUUID();
        const to = recipients[i % recipients.length] as string;
        sentIds.push(id);
        events.push({
          type: 'MessageSent',
          data: {
            event_id: randomUUID(),
            occurred_at: Date.now(),
            message_id: id,
            from_address: sender,
            to_address: to,
            message_type: 'text',
            encrypted_content: `c${i}`,
            content_sha256: 'h',
            signature: 's',
            node_id: 'test',
          },
        });
        if (i % DELIVERED_EVERY === 0) {
          deliveredIds.add(id);
          events.push({
            type: 'MessageDelivered',
            data: { event_id: randomUUID(), occurred_at: Date.now(), message_id: id, to_address: to, via: 'http' },
          });
        }
      }
      await producer.send({
        topic: ctx.topics.mailbox,
        acks: -1,
        messages: events.map((e) => ({
          key: (e.data as { to_address: string }).to_address,
          value: ctx.codec.encode(e),
        })),
      });
    }
    await producer.disconnect();
  }, 120_000);

  afterAll(async () => {
    await ctx.cleanup();
  });

  const count = async () =>
    (await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM messages')).rows[0]?.n ?? 0;

  it('leaves the projected rows equal to the events, one for one', async () => {
    const first = spawnRelay('projector', ctx.env);
    await eventually(
      async () => ((await count().catch(() => 0)) > 0 ? true : undefined),
      60_000,
      'the first projected rows',
    );
    first.kill('SIGKILL');
    await exited(first);
    const atKill = await count();
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(MESSAGES); // killed part-way, not after it had finished

    const second = spawnRelay('projector', ctx.env);
    await eventually(
      async () => {
        const { rows } = await ctx.pool.query<{ n: number; d: number }>(
          'SELECT count(*)::int AS n, count(*) FILTER (WHERE delivered)::int AS d FROM messages',
        );
        return rows[0]?.n === MESSAGES && rows[0]?.d === deliveredIds.size ? true : undefined;
      },
      120_000,
      'every event projected',
    );
    second.kill('SIGTERM');
    await exited(second);

    const { rows } = await ctx.pool.query<{ id: string; delivered: boolean }>('SELECT id, delivered FROM messages');
    expect(rows).toHaveLength(MESSAGES);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(sentIds));
    expect(new Set(rows.filter((r) => r.delivered).map((r) => r.id))).toEqual(deliveredIds);

    const admin = ctx.kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(ctx.topics.mailbox);
    await admin.disconnect();
    const checkpoints = await ctx.pool.query<{ partition: number; next_offset: string }>(
      'SELECT partition, next_offset FROM projection_checkpoints WHERE topic = $1',
      [ctx.topics.mailbox],
    );
    const byPartition = new Map(checkpoints.rows.map((r) => [r.partition, r.next_offset]));
    for (const end of ends) if (end.high !== '0') expect(byPartition.get(end.partition)).toBe(end.high);
  }, 240_000);
});
