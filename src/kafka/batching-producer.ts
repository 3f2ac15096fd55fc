import { promisify } from 'node:util';
import { gzip as zlibGzip, unzip as zlibUnzip } from 'node:zlib';
import kafkajs from 'kafkajs';
import { DependencyUnavailableError, OverloadedError } from '../errors/failure.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { sleep, type Service } from '../lifecycle/service.js';
import { topicLayouts } from './admin.js';
import type { KafkaClient } from './client.js';

const { CompressionCodecs, CompressionTypes, Partitioners } = kafkajs;
const gzip = promisify(zlibGzip);
const unzip = promisify(zlibUnzip);

// kafkajs's gzip codec compresses at zlib's default level 6. Ciphertext gains almost nothing from
// the slower levels, and level 1 costs a fraction of the CPU, which is what the ingress is short of.
CompressionCodecs[CompressionTypes.GZIP] = () => ({
  compress: (encoder: { buffer: Buffer }) => gzip(encoder.buffer, { level: 1 }),
  decompress: (buffer: Buffer) => unzip(buffer),
});

/** Bytes a record adds to its batch beyond its key and value (lengths, varints, attributes), rounded up. */
const RECORD_OVERHEAD = 32;
/** Bytes of a record batch's own header. */
const BATCH_OVERHEAD = 128;
/** A produce request stays well below the broker's socket.request.max.bytes (100 MiB by default). */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

export type Compression = 'none' | 'gzip';

export interface OutgoingRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
}

/** Where Kafka stored a record once every in-sync replica has it. */
export interface RecordPosition {
  readonly partition: number;
  readonly offset: string;
}

interface Pending extends OutgoingRecord {
  readonly partition: number;
  readonly resolve: (position: RecordPosition) => void;
  readonly reject: (error: unknown) => void;
}

export interface BatchingOptions {
  /** Most records in one produce request. */
  readonly maxBatch: number;
  /** How long the first record of a request waits for others. */
  readonly lingerMs: number;
  /** Records waiting beyond this are refused with `overloaded` (503). */
  readonly maxQueue: number;
  /** Codec of the record batches; gzip is built into Node, so it needs no native download. */
  readonly compression: Compression;
}

/**
 * kafkajs has no linger, and an idempotent producer sends one request at a time, so this class
 * gathers concurrent send() calls into one `sendBatch` (up to maxBatch records, or what arrived
 * within lingerMs) and resolves each call with its partition and offset once the request is
 * acknowledged by all in-sync replicas (acks = -1, idempotent). A full queue refuses new records
 * at once instead of letting latency grow without bound.
 *
 * Partitions are computed here with kafkajs's default (Java-compatible murmur2) partitioner, so
 * each record's offset is known from the response: base offset + its place in its partition.
 */
export class BatchingProducer implements Service {
  readonly name = 'producer';
  private producer: kafkajs.Producer;
  /** A request failed with its outcome unknown: the next one needs a new producer id first. */
  private producerSpent = false;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly partitionMetadata = new Map<string, kafkajs.PartitionMetadata[]>();
  /**
   * Per `topic\0key`, its partition: murmur2 in JavaScript cost more than a lookup, and a busy
   * recipient's key comes again and again. Partition counts are read once at start, so an entry
   * stays right; the map is emptied when it reaches its bound.
   */
  private readonly partitionOfKey = new Map<string, number>();
  /** Per topic, the most bytes of records one partition may take in one request. */
  private readonly partitionBytes = new Map<string, number>();
  /** Per `topic/partition`, the offset of the last record this process stored there. */
  private readonly lastStored = new Map<string, string>();
  private queue: Pending[] = [];
  private wake: (() => void) | undefined;
  private ready: Promise<void>;
  private markReady!: () => void;
  private failStart!: (error: unknown) => void;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly topics: readonly string[],
    private readonly options: BatchingOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.producer = this.newProducer();
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.failStart = reject;
    });
    this.ready.catch(() => undefined);
  }

  private newProducer(): kafkajs.Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  /**
   * Replaces the kafkajs producer after a request that failed with its outcome unknown. kafkajs
   * advances a partition's sequence numbers only on success, so the next request would carry the
   * failed one's numbers with other records. A broker that had stored the failed request would
   * take them for its duplicate: answer with the stored records' offsets and drop the new ones,
   * so messages would be acknowledged at positions holding other messages, and lost. A new
   * producer gets a new producer id from the broker, and its sequences start afresh.
   */
  private async renewProducer(): Promise<void> {
    const old = this.producer;
    await old.disconnect().catch(() => undefined);
    const fresh = this.newProducer();
    await fresh.connect().catch(async (error: unknown) => {
      await fresh.disconnect().catch(() => undefined);
      throw error;
    });
    this.producer = fresh;
    this.producerSpent = false;
    this.log.info('started a new idempotent producer after a failed produce request');
  }

  /** Resolves once the producer is connected and knows the partition counts. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Queues records for the next produce request; resolves once all in-sync replicas have them. */
  send(records: readonly OutgoingRecord[]): Promise<RecordPosition>[] {
    if (this.queue.length + records.length > this.options.maxQueue) {
      this.metrics?.loadShed.inc();
      const error = new OverloadedError(
        `the produce queue holds ${this.queue.length} records, at most ${this.options.maxQueue}`,
      );
      return records.map(() => Promise.reject(error));
    }
    const promises = records.map(
      (record) =>
        new Promise<RecordPosition>((resolve, reject) => {
          this.queue.push({ ...record, partition: this.partitionOf(record), resolve, reject });
        }),
    );
    this.metrics?.producerQueueDepth.set(this.queue.length);
    this.wake?.();
    return promises;
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.producer.connect();
      const layouts = await topicLayouts(this.kafka, this.topics);
      for (const topic of this.topics) {
        const layout = layouts.get(topic);
        if (!layout?.partitions) throw new Error(`topic ${topic} does not exist; run \`relay setup\``);
        this.partitionMetadata.set(
          topic,
          Array.from({ length: layout.partitions }, (_, partitionId) => ({
            partitionId,
            leader: 0,
            partitionErrorCode: 0,
            replicas: [],
            isr: [],
          })),
        );
        // Sizes are counted before compression, so a batch that fits uncompressed fits compressed.
        this.partitionBytes.set(topic, Math.floor(layout.maxMessageBytes * 0.8) - BATCH_OVERHEAD);
      }
    } catch (error) {
      this.failStart(error);
      throw error;
    }
    this.markReady();

    // Drain until aborted, then flush what is queued: nothing accepted is dropped on shutdown.
    while (!signal.aborted || this.queue.length > 0) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => {
          const done = () => {
            signal.removeEventListener('abort', done);
            resolve();
          };
          this.wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
        this.wake = undefined;
        continue;
      }
      if (this.queue.length < this.options.maxBatch && this.options.lingerMs > 0 && !signal.aborted) {
        await sleep(this.options.lingerMs, signal);
      }
      const batch = this.takeBatch();
      this.metrics?.producerQueueDepth.set(this.queue.length);
      await this.produce(batch);
    }
    await this.producer.disconnect();
  }

  /** Where the last record this process stored for `key` in `topic` is, if it stored one since it started. */
  lastStoredFor(topic: string, key: string): RecordPosition | undefined {
    const partition = this.partitionFor(topic, key);
    const offset = this.lastStored.get(`${topic}/${partition}`);
    return offset === undefined ? undefined : { partition, offset };
  }

  /**
   * The next request's records: up to maxBatch, in queue order, with no partition's records
   * passing the broker's record-batch limit (one recipient can have all of them). A record whose
   * partition is full stays queued, and so do the later records of that partition, so each
   * partition keeps its order; the others go ahead.
   */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const kept: Pending[] = [];
    const bytes = new Map<string, number>();
    const full = new Set<string>();
    let requestBytes = 0;
    let i = 0;
    // Look no further than a few requests' worth: behind a full hot partition, the queue can be long.
    const scan = Math.min(this.queue.length, 4 * this.options.maxBatch);
    for (; i < scan && batch.length < this.options.maxBatch; i++) {
      const record = this.queue[i] as Pending;
      const slot = `${record.topic}/${record.partition}`;
      const size = record.key.length + record.value.length + RECORD_OVERHEAD;
      const used = bytes.get(slot) ?? 0;
      if (
        full.has(slot) ||
        (used > 0 && used + size > (this.partitionBytes.get(record.topic) ?? 0)) ||
        (requestBytes > 0 && requestBytes + size > MAX_REQUEST_BYTES)
      ) {
        full.add(slot);
        kept.push(record);
        continue;
      }
      bytes.set(slot, used + size);
      requestBytes += size;
      batch.push(record);
    }
    this.queue = i < this.queue.length ? kept.concat(this.queue.slice(i)) : kept;
    return batch;
  }

  /** The partition that records with this key go to. */
  partitionFor(topic: string, key: string): number {
    return this.partitionOf({ topic, key, value: EMPTY });
  }

  private partitionOf(record: OutgoingRecord): number {
    const slot = `${record.topic}\0${record.key}`;
    const known = this.partitionOfKey.get(slot);
    if (known !== undefined) return known;
    const partitionMetadata = this.partitionMetadata.get(record.topic);
    if (!partitionMetadata) throw new Error(`the producer does not write to ${record.topic}`);
    const partition = this.partitioner({
      topic: record.topic,
      partitionMetadata,
      message: { key: record.key, value: record.value },
    });
    if (this.partitionOfKey.size >= PARTITION_CACHE_KEYS) this.partitionOfKey.clear();
    this.partitionOfKey.set(slot, partition);
    return partition;
  }

  /**
   * Sends a batch and settles each record with its position. kafkajs's sendBatch can resolve
   * without some of the records: when a partition's leader dies mid-request and the partition
   * moves to a broker that already answered for its own partitions, the retry skips that broker
   * (kafkajs keeps one response per broker). A record with no partition result was not written
   * by that call, so it is sent again; its idempotent sequence number is the one of the failed
   * attempt, so a copy that did reach the old leader is not written twice.
   */
  private async produce(batch: Pending[]): Promise<void> {
    let pending = batch;
    try {
      if (this.producerSpent) await this.renewProducer();
      for (let attempt = 1; pending.length > 0; attempt++) {
        const unsent = await this.produceOnce(pending);
        if (unsent.length === 0) break;
        this.metrics?.produceResends.inc(unsent.length);
        this.log.warn(
          {
            records: unsent.length,
            partitions: [...new Set(unsent.map((r) => `${r.topic}/${r.partition}`))],
            attempt,
          },
          'Kafka returned no result for some partitions; sending their records again',
        );
        if (attempt >= MAX_RESENDS) throw new Error(`no result for ${unsent.length} records after ${attempt} sends`);
        pending = unsent;
      }
      this.metrics?.produceBatchSize.observe(batch.length);
    } catch (error) {
      if (isTooLarge(error) && pending.length > 1 && onePartition(pending)) {
        // The broker counts the batch after compression and with its own overheads: halve and
        // resend. Only a request of one partition is split: kafkajs gives up on a whole request
        // at the first refused partition, after others may have been stored, and resending those
        // would write them twice. With the byte bound below the limit, this path is for a limit
        // lowered while the producer runs.
        this.log.warn({ records: pending.length }, 'Kafka refused a record batch as too large; splitting it');
        const half = Math.ceil(pending.length / 2);
        await this.produce(pending.slice(0, half));
        await this.produce(pending.slice(half));
        return;
      }
      this.log.error({ records: pending.length, err: error }, 'produce request failed');
      this.producerSpent = true;
      const failure = new DependencyUnavailableError(
        'Kafka did not acknowledge the event; retry with the same message id.',
        { cause: error },
      );
      for (const record of pending) record.reject(failure);
    }
  }

  /** One sendBatch: resolves the records Kafka stored and returns those it gave no result for. */
  private async produceOnce(batch: readonly Pending[]): Promise<Pending[]> {
    const byTopic = new Map<string, Pending[]>();
    for (const record of batch) {
      const list = byTopic.get(record.topic);
      if (list) list.push(record);
      else byTopic.set(record.topic, [record]);
    }
    const results = await this.producer.sendBatch({
      acks: -1,
      compression: this.options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      topicMessages: [...byTopic].map(([topic, records]) => ({
        topic,
        messages: records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
      })),
    });
    const baseOffsets = new Map<string, bigint>();
    for (const result of results) {
      if (result.errorCode === 0 && result.baseOffset !== undefined)
        baseOffsets.set(`${result.topicName}/${result.partition}`, BigInt(result.baseOffset));
    }
    // Records of one partition are written in order, from its base offset.
    const nextIndex = new Map<string, bigint>();
    const storedPerTopic = new Map<string, number>();
    const unsent: Pending[] = [];
    for (const record of batch) {
      const slot = `${record.topic}/${record.partition}`;
      const base = baseOffsets.get(slot);
      if (base === undefined) {
        unsent.push(record);
        continue;
      }
      const index = nextIndex.get(slot) ?? 0n;
      nextIndex.set(slot, index + 1n);
      storedPerTopic.set(record.topic, (storedPerTopic.get(record.topic) ?? 0) + 1);
      const offset = String(base + index);
      this.lastStored.set(slot, offset);
      record.resolve({ partition: record.partition, offset });
    }
    for (const [topic, stored] of storedPerTopic) this.metrics?.eventsProduced.inc({ topic }, stored);
    return unsent;
  }
}

const EMPTY = Buffer.alloc(0);
/** Keys whose partitions are remembered at most (recipient addresses, a few MB). */
const PARTITION_CACHE_KEYS = 100_000;

const onePartition = (records: readonly Pending[]): boolean =>
  records.every((r) => r.topic === records[0]?.topic && r.partition === records[0].partition);

/** Whether Kafka refused a request because a record batch, or the request, was too large. */
function isTooLarge(error: unknown): boolean {
  for (
    let e = error as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined;
    e;
    e = (e.originalError ?? e.cause) as typeof e
  ) {
    if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE') return true;
  }
  return false;
}

/** Sends of one batch before its remaining records are refused. */
const MAX_RESENDS = 5;
