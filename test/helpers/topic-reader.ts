import { randomUUID } from 'node:crypto';
import type { RelayEvent } from '../../src/events/types.js';
import type { TestContext } from './context.js';

export interface LoggedEvent {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly event: RelayEvent;
}

/** Records in a topic now: the sum over partitions of high watermark minus low. */
export async function recordCount(ctx: TestContext, topic: string): Promise<number> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Every event in a topic up to its current end, decoded through the registry, in log order per partition. */
export async function readTopic(ctx: TestContext, topic: string): Promise<LoggedEvent[]> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  await admin.disconnect();
  const remaining = new Set([...ends].filter(([, high]) => high > 0).map(([p]) => p));
  const events: LoggedEvent[] = [];
  if (remaining.size === 0) return events;
  const consumer = ctx.kafka.consumer({
    groupId: `${ctx.config.kafka.groupPrefix}.reader-${randomUUID()}`,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          if (!remaining.has(partition)) return;
          events.push({
            partition,
            offset: message.offset,
            key: message.key?.toString() ?? null,
            event: await ctx.codec.decode(message.value as Buffer),
          });
          if (Number(message.offset) + 1 >= (ends.get(partition) ?? 0)) remaining.delete(partition);
          if (remaining.size === 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return events.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
}
