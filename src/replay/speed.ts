import { Writable } from 'node:stream';
import type { RelayConfig } from '../config/config.js';
import type { EventCodec } from '../events/codec.js';
import type { KafkaClient } from '../kafka/client.js';
import type { Logger } from '../observability/logger.js';
import { jsonLines, TextSink } from './formats.js';
import { LogReader, throwawayGroupId } from './log-reader.js';
import { planRanges } from './offsets.js';
import { replay } from './replay-reader.js';

/** The connections a speed measurement uses. */
export interface SpeedResources {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly kafka: KafkaClient;
  readonly codec: EventCodec;
}

export interface Speed {
  readonly events: number;
  readonly seconds: number;
}

/** A stream that accepts everything and keeps nothing. */
const nullSink = (): Writable =>
  new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

/**
 * How fast `relay replay` reads a whole topic (beginning to the current end): decoded through the
 * registry and formatted as JSON Lines into a sink that discards it. For the benchmark.
 */
export async function replaySpeed(resources: SpeedResources, topic: string): Promise<Speed> {
  const summary = await replay(resources.kafka, resources.codec, {
    topics: [topic],
    start: { kind: 'beginning' },
    stop: { kind: 'now' },
    filter: {},
    formatter: jsonLines(),
    sink: new TextSink(nullSink()),
    groupPrefix: resources.config.kafka.groupPrefix,
    log: resources.log,
  });
  return { events: summary.read, seconds: summary.seconds };
}

/** The same read with kafkajs alone, no decoding: the ceiling replaySpeed is measured against. */
export async function rawConsumeSpeed(resources: SpeedResources, topic: string): Promise<Speed> {
  const started = Date.now();
  const ranges = await planRanges(resources.kafka, [topic], { kind: 'beginning' }, { kind: 'now' });
  const reader = new LogReader(resources.kafka, {
    groupId: throwawayGroupId(resources.config.kafka.groupPrefix, 'raw-speed'),
  });
  try {
    await reader.start(ranges, async () => undefined);
    await reader.whenDone();
  } finally {
    await reader.stop();
  }
  return { events: reader.recordsRead, seconds: (Date.now() - started) / 1000 };
}
