import { randomUUID } from 'node:crypto';
import type kafkajs from 'kafkajs';
import type { KafkaClient } from '../kafka/client.js';
import type { Logger } from '../observability/logger.js';

/** Offsets [start, end) of one partition to read; `end` null reads on until stopped (follow). */
export interface PartitionRange {
  readonly topic: string;
  readonly partition: number;
  readonly start: bigint;
  readonly end: bigint | null;
}

/** Records of one partition, in log order, all inside the partition's range. */
export type RangeBatchHandler = (
  topic: string,
  partition: number,
  messages: readonly kafkajs.KafkaMessage[],
) => Promise<void>;

export interface LogReaderOptions {
  /** Consumer group id: a throwaway one, never committed to; deleted by stop(). */
  readonly groupId: string;
  /** Partitions handled at the same time (order within a partition is always kept). */
  readonly concurrency?: number;
  readonly log?: Logger;
}

/** A consumer group id for a one-off read that `relay lag` does not list (it lists `<prefix>.*`). */
export const throwawayGroupId = (groupPrefix: string, purpose: string): string =>
  `${groupPrefix}-${purpose}-${randomUUID()}`;

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to hand over. */
  position: bigint;
  end: bigint | null;
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Reads exact offset ranges of topics with kafkajs. kafkajs only consumes through a group, so
 * this joins a throwaway group, never commits, seeks every partition to its start, and pauses a
 * partition when it reaches its end; `extend` moves ends further and resumes. Records outside a
 * range (a fetch that ran past the end, or came before a seek took effect) are dropped, so the
 * handler sees each offset of a range once, in order.
 */
export class LogReader {
  private readonly consumer: kafkajs.Consumer;
  private readonly states = new Map<string, PartitionState>();
  private handler: RangeBatchHandler = async () => undefined;
  private waiters: (() => void)[] = [];
  private failure: unknown;
  private readonly failure$: Promise<never>;
  private rejectFailure: (error: unknown) => void = () => undefined;
  private started = false;
  private stopped = false;
  private handed = 0;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly options: LogReaderOptions,
  ) {
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: 250,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxBytesPerPartition: 4 * 1024 * 1024,
      allowAutoTopicCreation: false,
    });
    this.failure$ = new Promise<never>((_, reject) => {
      this.rejectFailure = reject;
    });
    this.failure$.catch(() => undefined);
  }

  /** Records handed to the handler so far. */
  get recordsRead(): number {
    return this.handed;
  }

  /** The next offset to read in each partition. */
  positions(): Map<string, Map<number, bigint>> {
    const result = new Map<string, Map<number, bigint>>();
    for (const s of this.states.values()) {
      const topic = result.get(s.topic) ?? new Map<number, bigint>();
      topic.set(s.partition, s.position);
      result.set(s.topic, topic);
    }
    return result;
  }

  /** Records between each position and its end, summed (null if some range has no end). */
  remaining(): number | null {
    let sum = 0n;
    for (const s of this.states.values()) {
      if (s.end === null) return null;
      if (s.end > s.position) sum += s.end - s.position;
    }
    return Number(sum);
  }

  /** Starts reading the ranges; resolves once the consumer runs. Every partition of a topic read must have a range. */
  async start(ranges: readonly PartitionRange[], handler: RangeBatchHandler): Promise<void> {
    if (this.started) throw new Error('a LogReader starts once');
    this.started = true;
    this.handler = handler;
    for (const r of ranges) this.states.set(keyOf(r.topic, r.partition), { ...r, position: r.start });
    const topics = [...new Set(ranges.map((r) => r.topic))];
    if (topics.length === 0) return;

    this.consumer.on(this.consumer.events.CRASH, (event) => {
      if (!event.payload.restart) this.fail(event.payload.error);
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.options.concurrency ?? 1,
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs's batch payload functions are arrow closures, meant to be destructured
      eachBatch: async ({ batch, isRunning, isStale, heartbeat }) => {
        if (!isRunning() || isStale() || this.failure !== undefined) return;
        try {
          await this.take(batch.topic, batch.partition, batch.messages);
          await heartbeat();
        } catch (error) {
          this.fail(error);
        }
      },
    });
    // Seeks take effect at the next fetch of each partition; anything fetched before is dropped in take().
    for (const s of this.states.values()) {
      this.consumer.seek({ topic: s.topic, partition: s.partition, offset: s.position.toString() });
      if (s.end !== null && s.position >= s.end) this.consumer.pause([{ topic: s.topic, partitions: [s.partition] }]);
    }
    this.settle();
  }

  /** Raises the ends of these partitions (never lowers them) and resumes those that have more to read. */
  extend(ends: ReadonlyMap<string, ReadonlyMap<number, bigint>>): void {
    for (const [topic, partitions] of ends) {
      for (const [partition, end] of partitions) {
        const s = this.states.get(keyOf(topic, partition));
        if (!s) throw new Error(`${topic} partition ${partition} is not being read`);
        if (s.end === null || end <= s.end) continue;
        const wasDone = s.position >= s.end;
        s.end = end;
        if (wasDone && s.position < end) {
          this.consumer.seek({ topic, partition, offset: s.position.toString() });
          this.consumer.resume([{ topic, partitions: [partition] }]);
        }
      }
    }
  }

  /** Resolves when every partition has reached its end (never while following); rejects if reading fails. */
  whenDone(): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the reader's own failure (caught from kafkajs or the handler), passed on as-is
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.allDone()) return Promise.resolve();
    return Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), this.failure$]);
  }

  /** Leaves the group and deletes it (it holds no offsets, so this only tidies the broker's list). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.consumer.disconnect().catch(() => undefined);
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      await admin.deleteGroups([this.options.groupId]);
    } catch {
      // An empty group without offsets is removed by the broker anyway.
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async take(topic: string, partition: number, messages: readonly kafkajs.KafkaMessage[]): Promise<void> {
    const s = this.states.get(keyOf(topic, partition));
    if (!s) return;
    const end = s.end;
    if (end !== null && s.position >= end) return;
    const inRange = messages.filter((m) => {
      const offset = BigInt(m.offset);
      return offset >= s.position && (end === null || offset < end);
    });
    if (inRange.length > 0) {
      await this.handler(topic, partition, inRange);
      this.handed += inRange.length;
      s.position = BigInt((inRange[inRange.length - 1] as kafkajs.KafkaMessage).offset) + 1n;
    }
    if (s.end !== null && s.position >= s.end) {
      this.consumer.pause([{ topic, partitions: [partition] }]);
      this.settle();
    }
  }

  /** Every range has an end and has reached it (a range without an end, following, is never done). */
  private allDone(): boolean {
    for (const s of this.states.values()) if (s.end === null || s.position < s.end) return false;
    return true;
  }

  private settle(): void {
    if (!this.allDone()) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const resolve of waiting) resolve();
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.options.log?.debug({ group: this.options.groupId, err: error }, 'log reader failed');
    this.rejectFailure(error);
  }
}
