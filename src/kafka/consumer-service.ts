import kafkajs from 'kafkajs';
import { UndecodableEventError, type EventCodec } from '../events/codec.js';
import type { RelayEvent } from '../events/types.js';
import { describe } from '../errors/describe.js';
import { isPoison, PoisonError } from '../errors/failure.js';
import { exponentialBackoff, withRetry } from '../lifecycle/retry.js';
import { untilAborted, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KafkaClient } from './client.js';

const { Partitioners } = kafkajs;

/**
 * One record of a batch. `event` is absent when the record could not be decoded or applied and
 * went to the dead-letter topic, or when the consumer's `wantedKeys` passed over its key: a
 * handler must still count it as consumed. `wanted` is what `wantedKeys` said of its key.
 */
export interface ConsumedRecord<W = never> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly event?: RelayEvent;
  readonly wanted?: W;
}

/** Thrown by a handler for an event it can never apply (rather than a passing failure). */
export class UnapplicableEventError extends PoisonError {
  override readonly name = 'UnapplicableEventError';
}

/** Waits between tries of a failing apply: 200 ms, 400 ms, ... */
export const APPLY_BACKOFF = exponentialBackoff({ initialMs: 200 });

/**
 * Applies a batch with the consumers' failure rules: tried `attempts` times (at once given up on
 * poison). A passing failure (a dependency down) is not the events' fault: it is thrown, and the
 * batch is read again. Otherwise each record is applied alone to find the culprits; one that
 * still fails is handed to `onPoison` (the live consumer dead-letters it, a rebuild skips it) and
 * then applied without its event, so that it counts as consumed.
 */
export async function applyIsolatingPoison<W>(
  handler: BatchHandler<W>,
  records: readonly ConsumedRecord<W>[],
  topic: string,
  partition: number,
  rules: {
    readonly attempts: number;
    readonly onRetry?: (error: unknown, attempt: number) => void;
    readonly onPoison: (record: ConsumedRecord<W>, failure: unknown) => Promise<void> | void;
  },
): Promise<void> {
  // Resolves to the failure that remains once retries are spent (or at once for poison).
  const tryApply = (slice: readonly ConsumedRecord<W>[]): Promise<unknown> =>
    withRetry(() => handler(slice, topic, partition), {
      attempts: rules.attempts,
      backoff: APPLY_BACKOFF,
      ...(rules.onRetry ? { onRetry: rules.onRetry } : {}),
    }).then(
      () => undefined,
      (error: unknown) => error ?? new Error('the handler failed without an error'),
    );
  const failure = await tryApply(records);
  if (failure === undefined) return;
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the handler's own failure, rethrown as-is
  if (!isPoison(failure)) throw failure;
  for (const record of records) {
    const failure = await tryApply([record]);
    if (failure === undefined) continue;
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the handler's own failure, rethrown as-is
    if (!isPoison(failure)) throw failure;
    await rules.onPoison(record, failure);
    await handler(
      [{ topic: record.topic, partition: record.partition, offset: record.offset, key: record.key }],
      topic,
      partition,
    );
  }
}

/** Applies the records of one partition, in order. Must be idempotent per record: after a crash, records since the last commit come again. */
export type BatchHandler<W = never> = (
  records: readonly ConsumedRecord<W>[],
  topic: string,
  partition: number,
) => Promise<void>;

export interface ConsumerOptions<W = never> {
  readonly name: string;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly dlqTopic: string;
  /** Attempts per apply before the batch is split and the failing record dead-lettered. */
  readonly attempts?: number;
  /** Where a new group starts: the earliest offset (projections) or only new records (router). */
  readonly fromBeginning?: boolean;
  /**
   * How long a fetch may wait for `minBytes` of new records. Waiting a little gathers bigger
   * batches (one transaction and one handler call each) where a few milliseconds more do not
   * matter; the router, which delivers to sockets, takes records as soon as there are any.
   */
  readonly fetch?: { readonly minBytes: number; readonly maxWaitMs: number };
  /**
   * Given the distinct record keys of a batch, the keys whose records the handler needs, each
   * with what the handler should know of it (its records carry it as `wanted`); the others are
   * not decoded and reach it without `event`. Records without a key are always decoded. The
   * router decodes only the messages of recipients that hold a stream, and gets their holders.
   */
  readonly wantedKeys?: (keys: readonly string[]) => Promise<ReadonlyMap<string, W>>;
}

/** How often applied offsets are committed to Kafka (and once more when the consumer stops). */
export const COMMIT_INTERVAL_MS = 1000;

/**
 * Runs a consumer group: decodes each batch through the registry, hands it to the handler, and
 * commits what the handler has applied. A record that cannot be decoded, or that the handler
 * still fails on after retries (applied alone), goes to the dead-letter topic with the error in
 * its headers, and the partition moves on.
 *
 * Offsets are committed once a second, not after every batch (kafkajs's default): a commit is a
 * round trip to the group coordinator and a write to __consumer_offsets, and at moderate rates
 * batches are small, so per-batch commits were a large part of the broker's work. Only applied
 * offsets are ever committed, so after a crash or a rebalance a partition is read again from at
 * most a second back, never skipped; handlers are idempotent per record.
 */
export class ConsumerService<W = never> implements Service {
  readonly name: string;
  private readonly consumer;
  private readonly dlq;
  private readonly joinedGroup: Promise<void>;
  /** Set once the service is stopping: a crash then is not followed by a restart. */
  private stopping = false;
  /** Per topic-partition, the next offset to commit: one past the last record applied. */
  private readonly applied = new Map<string, { topic: string; partition: number; offset: string }>();
  private commitInFlight: Promise<void> | undefined;

  constructor(
    kafka: KafkaClient,
    private readonly codec: EventCodec,
    private readonly options: ConsumerOptions<W>,
    private readonly handler: BatchHandler<W>,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.name = options.name;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      minBytes: options.fetch?.minBytes ?? 1,
      maxWaitTimeInMs: options.fetch?.maxWaitMs ?? 100,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      // kafkajs gives up on a group whose coordinator broker died once its retries run out; a
      // consumer of ours always rejoins instead (offsets are only committed after applying, so a
      // restart re-reads, never skips). Not while stopping: a restart then would outlive disconnect().
      retry: { retries: 10, restartOnFailure: async () => !this.stopping },
    });
    this.joinedGroup = new Promise((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    // After a rebalance, offsets of partitions now read by another member are theirs to commit.
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const [slot, { topic, partition }] of this.applied) {
        if (!payload.memberAssignment[topic]?.includes(partition)) this.applied.delete(slot);
      }
    });
    this.dlq = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  /** Resolves once the consumer has joined its group and holds partitions. */
  joined(): Promise<void> {
    return this.joinedGroup;
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.dlq.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...this.options.topics],
      fromBeginning: this.options.fromBeginning ?? true,
    });
    const crashed = new Promise<never>((_, reject) => {
      this.consumer.on(this.consumer.events.CRASH, (event) => {
        if (!event.payload.restart) reject(event.payload.error);
      });
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs's batch payload functions are arrow closures, meant to be destructured
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const keys = batch.messages.map((message) => message.key?.toString() ?? null);
        const wanted = await this.options.wantedKeys?.([...new Set(keys)].filter((key): key is string => key !== null));
        const records = await Promise.all(
          batch.messages.map(async (message, i): Promise<ConsumedRecord<W>> => {
            const key = keys[i] ?? null;
            const selected = wanted && key !== null ? wanted.get(key) : undefined;
            const base = {
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              key,
              ...(selected === undefined ? {} : { wanted: selected }),
            };
            if (wanted && key !== null && selected === undefined) return base;
            try {
              if (!message.value) throw new UndecodableEventError('the record has no value');
              return { ...base, event: await this.codec.decode(message.value) };
            } catch (error) {
              // A registry that does not answer is a passing failure: fail the batch, retry later.
              if (!isPoison(error)) throw error;
              await this.deadLetter(base, message.value, message.headers, error);
              return base;
            }
          }),
        );
        await this.apply(records, batch.topic, batch.partition);
        const last = records[records.length - 1];
        if (last) {
          resolveOffset(last.offset);
          this.applied.set(`${batch.topic}|${batch.partition}`, {
            topic: batch.topic,
            partition: batch.partition,
            offset: String(BigInt(last.offset) + 1n),
          });
        }
        await heartbeat();
      },
    });
    const committer = setInterval(() => void this.commitApplied(), COMMIT_INTERVAL_MS);
    await Promise.race([untilAborted(signal), crashed]).finally(() => {
      this.stopping = true;
      clearInterval(committer);
    });
    await this.commitApplied(true);
    await this.consumer.disconnect();
    await this.dlq.disconnect();
  }

  /**
   * Commits what was applied since the last commit; a failed commit is tried again next time.
   * The timer skips a turn while a commit is in flight; the final one waits for it.
   */
  private async commitApplied(final = false): Promise<void> {
    if (this.commitInFlight) {
      if (!final) return;
      await this.commitInFlight;
    }
    if (this.applied.size === 0) return;
    const offsets = [...this.applied.values()];
    this.commitInFlight = this.consumer
      .commitOffsets(offsets)
      .then(() => {
        for (const committed of offsets) {
          const slot = `${committed.topic}|${committed.partition}`;
          if (this.applied.get(slot) === committed) this.applied.delete(slot);
        }
      })
      .catch((error: unknown) =>
        this.log.debug({ consumer: this.name, err: error }, 'offset commit failed; trying again'),
      )
      .finally(() => (this.commitInFlight = undefined));
    await this.commitInFlight;
  }

  private async apply(records: readonly ConsumedRecord<W>[], topic: string, partition: number): Promise<void> {
    await applyIsolatingPoison(this.handler, records, topic, partition, {
      attempts: this.options.attempts ?? 3,
      onRetry: (error, attempt) =>
        this.log.warn({ consumer: this.name, topic, partition, attempt, err: error }, 'apply failed; retrying'),
      onPoison: (record, failure) =>
        this.deadLetter(record, record.event ? this.codec.encode(record.event) : null, {}, failure),
    });
  }

  private async deadLetter(
    record: Omit<ConsumedRecord<W>, 'event'>,
    value: Buffer | null,
    headers: kafkajs.IHeaders | undefined,
    error: unknown,
  ): Promise<void> {
    this.metrics?.deadLettered.inc({ consumer: this.name });
    this.log.error(
      { consumer: this.name, topic: record.topic, partition: record.partition, offset: record.offset, err: error },
      'event dead-lettered',
    );
    await this.dlq.send({
      topic: this.options.dlqTopic,
      acks: -1,
      messages: [
        {
          key: record.key,
          value,
          headers: {
            ...headers,
            'relay.dlq.consumer': this.name,
            'relay.dlq.topic': record.topic,
            'relay.dlq.partition': String(record.partition),
            'relay.dlq.offset': record.offset,
            'relay.dlq.error': describe(error).slice(0, 4000),
            'relay.dlq.at': new Date().toISOString(),
          },
        },
      ],
    });
  }
}
