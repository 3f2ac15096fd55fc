import { randomUUID } from 'node:crypto';
import { consumerService } from '../../../src/app/roles.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { eventually, openTestContext, type TestContext } from '../../helpers/context.js';
import { messageSent, produceRecords } from '../../helpers/events.js';
import { TestPeer } from '../../helpers/peer.js';
import { recordCount } from '../../helpers/topic-reader.js';

// An event a consumer cannot decode or apply goes to relay.dlq.v1 with the error in its
// headers, and the partition moves on: the events after it are still projected.
describe('dead-lettering in the projector', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await openTestContext('dlq', { RELAY_TOPIC_PARTITIONS: '1' });
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  const sent = (messageId: string, to: string) =>
    ctx.codec.encode(messageSent({ message_id: messageId, from_address: to, to_address: to }));

  it('sends undecodable and unapplicable events to the dead-letter topic and projects the rest', async () => {
    const to = TestPeer.create().address;
    const before = randomUUID();
    const after = randomUUID();
    await produceRecords(ctx, ctx.topics.mailbox, [
      { key: to, value: sent(before, to) },
      { key: to, value: Buffer.from('not avro at all') },
      // Decodes, but Postgres refuses the id: the event itself is at fault.
      { key: to, value: sent('not-a-uuid', to) },
      { key: to, value: sent(after, to) },
    ]);

    const projector = consumerService(ctx, 'projector');
    const stop = new AbortController();
    const running = runServices([projector], stop.signal, ctx.log);
    try {
      await eventually(
        async () => {
          const { rows } = await ctx.pool.query('SELECT id FROM messages WHERE id = ANY($1::uuid[])', [
            [before, after],
          ]);
          return rows.length === 2 ? rows : undefined;
        },
        60_000,
        'the good events projected',
      );
      const checkpoint = await ctx.pool.query<{ next_offset: string }>(
        'SELECT next_offset FROM projection_checkpoints WHERE topic = $1',
        [ctx.topics.mailbox],
      );
      expect(checkpoint.rows[0]?.next_offset).toBe('4');
    } finally {
      stop.abort();
      await running;
    }

    const admin = ctx.kafka.admin();
    await admin.connect();
    const [dlqEnd] = await admin.fetchTopicOffsets(ctx.topics.dlq).then((o) => o.filter((p) => p.high !== '0'));
    await admin.disconnect();
    expect(dlqEnd?.high).toBe('2');

    const consumer = ctx.kafka.consumer({ groupId: `${ctx.config.kafka.groupPrefix}.dlq-reader` });
    await consumer.connect();
    await consumer.subscribe({ topics: [ctx.topics.dlq], fromBeginning: true });
    const dead: { headers: Record<string, string>; value: Buffer | null }[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
          dead.push({ headers, value: message.value });
          if (dead.length === 2) resolve();
        },
      });
    });
    await consumer.disconnect();
    expect(dead.map((d) => d.headers['relay.dlq.offset'])).toEqual(['1', '2']);
    for (const d of dead) {
      expect(d.headers['relay.dlq.consumer']).toBe('projector');
      expect(d.headers['relay.dlq.topic']).toBe(ctx.topics.mailbox);
      expect(d.headers['relay.dlq.error']).toBeTruthy();
    }
    expect(dead[0]?.value?.toString()).toBe('not avro at all');
    expect(dead[1]?.headers['relay.dlq.error']).toMatch(/uuid/i);
    const decoded = await ctx.codec.decode(dead[1]?.value as Buffer);
    expect(decoded.data).toMatchObject({ message_id: 'not-a-uuid' });
    // Dead-lettering copies; the log itself stays as it was written.
    expect(await recordCount(ctx, ctx.topics.mailbox)).toBe(4);
  }, 120_000);
});
