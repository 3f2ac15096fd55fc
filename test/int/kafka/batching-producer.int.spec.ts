import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { BatchingProducer } from '../../../src/kafka/batching-producer.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { eventually, openTestContext, type TestContext } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

// Everything to one recipient lands in one partition: the producer must keep each partition's
// share of a request under the broker's record-batch limit, and split a batch the broker refuses.
describe('the batching producer with one hot recipient', () => {
  let ctx: TestContext;
  // The producer's warnings show which path it took.
  const recorded = recordingLogger('warn');
  const warnings = () => recorded.entries.filter((entry) => entry.level === 'warn').map((entry) => entry.message);
  let producer: BatchingProducer;
  const stop = new AbortController();
  let running: Promise<void>;

  beforeAll(async () => {
    ctx = await openTestContext('hot');
    producer = new BatchingProducer(
      ctx.kafka,
      [ctx.topics.mailbox],
      { maxBatch: 2000, lingerMs: 5, maxQueue: 50_000, compression: 'gzip' },
      recorded.log,
    );
    running = runServices([producer], stop.signal, ctx.log);
    await producer.whenReady();
  }, 60_000);

  afterAll(async () => {
    stop.abort();
    await running;
    await ctx.cleanup();
  });

  /** Random bytes as base64url: ciphertext does not compress, so the batch is as large as it looks. */
  const records = (key: string, count: number, bytes: number) =>
    Array.from({ length: count }, () => ({
      topic: ctx.topics.mailbox,
      key,
      value: Buffer.from(randomBytes(bytes).toString('base64url')),
    }));

  const expectConsecutive = (positions: { partition: number; offset: string }[]) => {
    expect(new Set(positions.map((p) => p.partition)).size).toBe(1);
    const offsets = positions.map((p) => BigInt(p.offset)).sort((x, y) => (x < y ? -1 : 1));
    offsets.forEach((offset, i) => expect(offset).toBe((offsets[0] as bigint) + BigInt(i)));
  };

  it('stores 300 records of 64 KB for one key, queued at once, in requests the broker accepts', async () => {
    const key = TestPeer.create().address;
    const positions = await Promise.all(producer.send(records(key, 300, 48 * 1024)));
    expect(positions).toHaveLength(300);
    expectConsecutive(positions);
    expect(warnings()).toEqual([]);
    expect(producer.lastStoredFor(ctx.topics.mailbox, key)?.offset).toBe(
      positions
        .map((p) => BigInt(p.offset))
        .reduce((a, b) => (a > b ? a : b))
        .toString(),
    );
  }, 120_000);

  it('splits and sends again a batch the broker refuses as too large', async () => {
    // The broker's limit drops below what the producer read at start.
    const admin = ctx.kafka.admin();
    await admin.connect();
    const resource = { type: kafkajs.ConfigResourceTypes.TOPIC, name: ctx.topics.mailbox };
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ ...resource, configEntries: [{ name: 'max.message.bytes', value: '200000' }] }],
    });
    await eventually(
      async () => {
        const described = await admin.describeConfigs({
          includeSynonyms: false,
          resources: [{ ...resource, configNames: ['max.message.bytes'] }],
        });
        return described.resources[0]?.configEntries[0]?.configValue === '200000' ? true : undefined;
      },
      15_000,
      'the lower limit in force',
    );
    await admin.disconnect();

    const key = TestPeer.create().address;
    const positions = await Promise.all(producer.send(records(key, 40, 45 * 1024)));
    expect(positions).toHaveLength(40);
    expectConsecutive(positions);
    expect(warnings()).toContain('Kafka refused a record batch as too large; splitting it');
  }, 120_000);
});
