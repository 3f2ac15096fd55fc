import kafkajs from 'kafkajs';
import type { KafkaClient } from '../../src/kafka/client.js';
import { PerSecond, Samples, type Distribution } from '../samples.js';

const { Partitioners } = kafkajs;

export interface BaselineResult {
  readonly records: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
  readonly recordBytes: number;
  /** Latency of each sendBatch call, ms. */
  readonly requestLatency: Distribution;
  readonly perSecond: { min: number; median: number; max: number } | undefined;
  readonly recordsPerRequest: number;
  readonly callers: number;
}

/**
 * The ceiling: a raw kafkajs producer configured as the relay's (idempotent, acks -1, one
 * request in flight) writing records the size of a MessageSent event, keyed like the relay's, to a
 * topic with the same partition count, as fast as it can. A few callers keep the next batch
 * queued while one is in flight (kafkajs serializes them).
 */
export async function runBaseline(options: {
  kafka: KafkaClient;
  topic: string;
  keys: readonly string[];
  values: readonly Buffer[];
  durationSeconds: number;
  recordsPerRequest?: number;
  callers?: number;
}): Promise<BaselineResult> {
  const recordsPerRequest = options.recordsPerRequest ?? 2000;
  const callers = options.callers ?? 3;
  const producer = options.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const batches = Array.from({ length: 8 }, (_, b) =>
    Array.from({ length: recordsPerRequest }, (_, i) => {
      const n = b * recordsPerRequest + i;
      return {
        key: options.keys[n % options.keys.length] as string,
        value: options.values[n % options.values.length] as Buffer,
      };
    }),
  );
  // One unmeasured request: metadata, producer id, connections.
  await producer.send({ topic: options.topic, acks: -1, messages: batches[0] ?? [] });

  const latency = new Samples();
  const started = performance.now();
  const perSecond = new PerSecond(started);
  const deadline = started + options.durationSeconds * 1000;
  let records = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < deadline) {
        const messages = batches[next++ % batches.length] ?? [];
        const t0 = performance.now();
        await producer.send({ topic: options.topic, acks: -1, messages });
        const t1 = performance.now();
        latency.add(t1 - t0);
        if (t1 <= deadline) {
          records += messages.length;
          perSecond.add(t1, messages.length);
        }
      }
    }),
  );
  await producer.disconnect();
  const seconds = options.durationSeconds;
  return {
    records,
    seconds,
    recordsPerSecond: records / seconds,
    recordBytes: options.values[0]?.length ?? 0,
    requestLatency: latency.summary(),
    perSecond: perSecond.spread(seconds),
    recordsPerRequest,
    callers,
  };
}
