import { ConsumerService, type ConsumedRecord } from '../../../src/kafka/consumer-service.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { openTestContext, type TestContext } from '../../helpers/context.js';
import { messageSent, produceRecords } from '../../helpers/events.js';
import { recordCount } from '../../helpers/topic-reader.js';

// A consumer with `wantedKeys` decodes only the records of the keys it names; the others reach
// its handler undecoded, and are not dead-lettered even when they could not be decoded.
describe('a consumer that wants some keys only', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await openTestContext('wanted', { RELAY_TOPIC_PARTITIONS: '1' });
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('decodes the wanted keys, passes over the rest, and asks once per batch for each key', async () => {
    const sent = (to: string) => ctx.codec.encode(messageSent({ from_address: to, to_address: to }));
    await produceRecords(ctx, ctx.topics.mailbox, [
      { key: 'wanted', value: sent('wanted') },
      { key: 'other', value: Buffer.from('not avro: never decoded') },
      { key: 'other', value: sent('other') },
      { key: 'wanted', value: sent('wanted') },
    ]);

    const asked: string[][] = [];
    const seen: ConsumedRecord<string>[] = [];
    let allSeen!: () => void;
    const done = new Promise<void>((resolve) => (allSeen = resolve));
    const consumer = new ConsumerService(
      ctx.kafka,
      ctx.codec,
      {
        name: 'wanted-test',
        groupId: `${ctx.config.kafka.groupPrefix}.wanted-test`,
        topics: [ctx.topics.mailbox],
        dlqTopic: ctx.topics.dlq,
        wantedKeys: async (keys) => {
          asked.push([...keys]);
          return new Map(keys.filter((key) => key === 'wanted').map((key) => [key, `what ${key} needs`]));
        },
      },
      async (records) => {
        seen.push(...records);
        if (seen.length >= 4) allSeen();
      },
      ctx.log,
    );
    const stop = new AbortController();
    const running = runServices([consumer], stop.signal, ctx.log);
    try {
      await done;
    } finally {
      stop.abort();
      await running;
    }

    expect(seen.map((r) => [r.offset, r.key, r.event?.type, r.wanted])).toEqual([
      ['0', 'wanted', 'MessageSent', 'what wanted needs'],
      ['1', 'other', undefined, undefined],
      ['2', 'other', undefined, undefined],
      ['3', 'wanted', 'MessageSent', 'what wanted needs'],
    ]);
    for (const keys of asked) expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(asked.flat())).toEqual(new Set(['wanted', 'other']));
    expect(await recordCount(ctx, ctx.topics.dlq)).toBe(0);
  }, 120_000);
});
