import { randomUUID } from 'node:crypto';
import { subjectOf, type RelayEvent } from '../../../src/events/types.js';
import { ensureTopics } from '../../../src/kafka/admin.js';
import { openTestContext, type TestContext } from '../../helpers/context.js';
import { stack } from '../../helpers/processes.js';

// The broker is the real Apache Kafka: Kafka's own topic tool, run from the fetched jars, sees
// what kafkajs created, and a record encoded against the real registry round-trips.
describe('the local Kafka broker and schema registry', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await openTestContext('broker');
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('creates a 6-partition topic through kafkajs that TopicCommand reads back', async () => {
    const topic = `${ctx.config.kafka.topicPrefix}six`;
    expect(await ensureTopics(ctx.kafka, [{ topic, numPartitions: 6, replicationFactor: 1 }])).toEqual([topic]);
    const described = await stack([
      'kafka-tool',
      'org.apache.kafka.tools.TopicCommand',
      '--bootstrap-server',
      ctx.config.kafka.brokers[0] ?? '127.0.0.1:9092',
      '--describe',
      '--topic',
      topic,
    ]);
    expect(described).toMatch(new RegExp(`Topic: ${topic.replace(/\./g, '\\.')}\\s.*PartitionCount: 6\\b`));
    expect(described.match(/\tPartition: \d+/g)).toHaveLength(6);
  }, 120_000);

  it('produces (idempotent, acks all) and consumes a record encoded with a registered schema', async () => {
    const event: RelayEvent = {
      type: 'PeerPresenceChanged',
      data: {
        event_id: randomUUID(),
        occurred_at: Date.now(),
        address: `addr-${randomUUID()}`,
        online: true,
        node_id: 'n1',
      },
    };
    const value = ctx.codec.encode(event);
    // The id in the record is the one the registry holds for the subject (Confluent wire format).
    const latest = (await (
      await fetch(`${ctx.config.registry.url}/subjects/${subjectOf('PeerPresenceChanged')}/versions/latest`)
    ).json()) as { id: number };
    expect(value.readUInt8(0)).toBe(0);
    expect(value.readInt32BE(1)).toBe(latest.id);

    const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const [ack] = await producer.send({
      topic: ctx.topics.peers,
      acks: -1,
      messages: [{ key: event.data.address, value }],
    });
    await producer.disconnect();
    expect(ack?.errorCode).toBe(0);

    const consumer = ctx.kafka.consumer({ groupId: `${ctx.config.kafka.groupPrefix}.broker-test` });
    await consumer.connect();
    await consumer.subscribe({ topics: [ctx.topics.peers], fromBeginning: true });
    const received = await new Promise<{ bytes: Buffer; offset: string; partition: number }>((resolve) => {
      void consumer.run({
        autoCommit: true,
        eachMessage: async ({ message, partition }) => {
          if (message.value) resolve({ bytes: message.value, offset: message.offset, partition });
        },
      });
    });
    await consumer.commitOffsets([
      { topic: ctx.topics.peers, partition: received.partition, offset: String(Number(received.offset) + 1) },
    ]);
    await consumer.disconnect();

    expect(received.partition).toBe(ack?.partition);
    expect(await ctx.codec.decode(received.bytes)).toEqual(event);
    const admin = ctx.kafka.admin();
    await admin.connect();
    const [committed] = await admin.fetchOffsets({
      groupId: `${ctx.config.kafka.groupPrefix}.broker-test`,
      topics: [ctx.topics.peers],
    });
    await admin.disconnect();
    expect(committed?.partitions.find((p) => p.partition === received.partition)?.offset).toBe(
      String(Number(received.offset) + 1),
    );
  }, 60_000);
});
