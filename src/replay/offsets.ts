import type { KafkaAdmin, KafkaClient } from '../kafka/client.js';
import type { PartitionRange } from './log-reader.js';

/** Where a replay starts in each partition. */
export type StartAt =
  | { readonly kind: 'beginning' }
  /** `all` for every partition, or one offset per listed partition (the others are not read). */
  | { readonly kind: 'offset'; readonly all?: bigint; readonly partitions?: ReadonlyMap<number, bigint> }
  /** The first record whose timestamp is at or after `at`. */
  | { readonly kind: 'time'; readonly at: number };

/** Where a replay stops. */
export type StopAt =
  { readonly kind: 'now' } | { readonly kind: 'time'; readonly at: number } | { readonly kind: 'follow' };

/**
 * How far past an end time the reader looks. A record's Kafka timestamp is taken by the producer
 * a little after the event's occurred_at (the ingress batches and retries), so the records of
 * events that occurred before the end time can sit just after the first record stamped later;
 * the filter on occurred_at drops what this over-reads.
 */
export const END_TIME_SLACK_MS = 60_000;

export interface PartitionOffsets {
  readonly partition: number;
  /** The earliest offset the log still holds. */
  readonly low: bigint;
  /** The log end offset: the offset the next record will get. */
  readonly high: bigint;
}

/** Runs `work` with one connected admin client, disconnected afterwards. */
async function withAdmin<T>(kafka: KafkaClient, work: (admin: KafkaAdmin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Low and high offsets of every partition of each topic, now. */
async function offsetsOf(admin: KafkaAdmin, topics: readonly string[]): Promise<Map<string, PartitionOffsets[]>> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0)
    throw new Error(`topic ${missing.join(', ')} does not exist (check RELAY_TOPIC_PREFIX and RELAY_KAFKA_BROKERS)`);
  const result = new Map<string, PartitionOffsets[]>();
  for (const topic of topics) {
    const offsets = await admin.fetchTopicOffsets(topic);
    result.set(
      topic,
      offsets
        .map((p) => ({ partition: p.partition, low: BigInt(p.low), high: BigInt(p.high) }))
        .sort((a, b) => a.partition - b.partition),
    );
  }
  return result;
}

async function offsetsAtTime(admin: KafkaAdmin, topic: string, at: number): Promise<Map<number, bigint>> {
  // kafkajs answers the log end offset for a partition with no record at or after `at`.
  const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, at);
  return new Map(offsets.map((p) => [p.partition, BigInt(p.offset)]));
}

const clamp = (value: bigint, low: bigint, high: bigint): bigint => (value < low ? low : value > high ? high : value);

/**
 * The offset range to read in every partition of the topics. The ends are the log end offsets
 * taken now (or offsets found by time), so a replay without --follow stops even while the relay
 * keeps writing.
 */
export function planRanges(
  kafka: KafkaClient,
  topics: readonly string[],
  start: StartAt,
  stop: StopAt,
): Promise<PartitionRange[]> {
  return withAdmin(kafka, async (admin) => {
    const offsets = await offsetsOf(admin, topics);
    const ranges: PartitionRange[] = [];
    for (const topic of topics) {
      const partitions = offsets.get(topic) ?? [];
      const startTimes = start.kind === 'time' ? await offsetsAtTime(admin, topic, start.at) : undefined;
      const stopTimes =
        stop.kind === 'time' ? await offsetsAtTime(admin, topic, stop.at + END_TIME_SLACK_MS) : undefined;
      for (const { partition, low, high } of partitions) {
        if (start.kind === 'offset' && start.partitions && !start.partitions.has(partition)) {
          ranges.push({ topic, partition, start: high, end: high }); // not asked for: read nothing
          continue;
        }
        let first: bigint;
        switch (start.kind) {
          case 'beginning':
            first = low;
            break;
          case 'time':
            first = startTimes?.get(partition) ?? high;
            break;
          case 'offset': {
            const wanted = start.partitions ? start.partitions.get(partition) : start.all;
            first = wanted === undefined ? high : wanted;
            break;
          }
        }
        first = clamp(first, low, high);
        const end =
          stop.kind === 'follow'
            ? null
            : stop.kind === 'time'
              ? clamp(stopTimes?.get(partition) ?? high, low, high)
              : high;
        ranges.push({ topic, partition, start: end !== null && first > end ? end : first, end });
      }
    }
    return ranges;
  });
}

/** Records in the ranges (null when one of them has no end). */
export function rangeSize(ranges: readonly PartitionRange[]): number | null {
  let sum = 0n;
  for (const r of ranges) {
    if (r.end === null) return null;
    if (r.end > r.start) sum += r.end - r.start;
  }
  return Number(sum);
}
