import type { KafkaAdmin } from './client.js';
import { sleep, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** A consumer group whose lag is reported under its role's name. */
export interface WatchedGroup {
  readonly consumer: string;
  readonly groupId: string;
  readonly topics: readonly string[];
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

/**
 * Records after the committed offset, per partition. A partition the group has never committed
 * is left out: the router starts at the end of the log, and a lag counted from the start would be
 * wrong for it; a partition a projection has not reached yet shows up once it commits.
 */
export function partitionLags(
  topic: string,
  ends: readonly { partition: number; high: string; low: string }[],
  committed: readonly { partition: number; offset: string }[],
): PartitionLag[] {
  const at = new Map(committed.map((c) => [c.partition, BigInt(c.offset)]));
  const lags: PartitionLag[] = [];
  for (const end of ends) {
    const offset = at.get(end.partition);
    if (offset === undefined || offset < 0n) continue;
    // Retention may have deleted records the group never read: they are not there to read.
    const from = offset > BigInt(end.low) ? offset : BigInt(end.low);
    const lag = BigInt(end.high) - from;
    lags.push({ topic, partition: end.partition, lag: Number(lag > 0n ? lag : 0n) });
  }
  return lags;
}

/**
 * Reads each group's committed offsets and the topics' end offsets from Kafka every
 * `intervalMs`, and sets relay_consumer_lag_records. The lag comes from the group, not from the
 * consumer in this process, so a consumer that is stuck (or whose process died, in another
 * replica) still shows its lag growing.
 */
export class ConsumerLagMonitor implements Service {
  readonly name = 'consumer-lag';

  constructor(
    private readonly admin: () => Promise<KafkaAdmin>,
    private readonly groups: readonly WatchedGroup[],
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.measure().catch((error: unknown) => this.log.debug({ err: error }, 'could not read consumer lag'));
      await sleep(this.intervalMs, signal);
    }
  }

  /** One reading of every watched group. */
  async measure(): Promise<void> {
    const admin = await this.admin();
    const ends = new Map<string, Awaited<ReturnType<KafkaAdmin['fetchTopicOffsets']>>>();
    for (const group of this.groups) {
      const committed = await admin.fetchOffsets({ groupId: group.groupId, topics: [...group.topics] });
      for (const { topic, partitions } of committed) {
        let topicEnds = ends.get(topic);
        if (!topicEnds) {
          topicEnds = await admin.fetchTopicOffsets(topic);
          ends.set(topic, topicEnds);
        }
        for (const { partition, lag } of partitionLags(topic, topicEnds, partitions)) {
          this.metrics.consumerLag.set({ consumer: group.consumer, topic, partition: String(partition) }, lag);
        }
      }
      this.metrics.consumerLagCheck.setToCurrentTime({ consumer: group.consumer });
    }
  }
}
