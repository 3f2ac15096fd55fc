import type { EventCodec } from '../events/codec.js';
import type { KafkaClient } from '../kafka/client.js';
import { untilAborted } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import { matchesFilter, type ReplayFilter } from './filters.js';
import type { Formatter, TextSink } from './formats.js';
import { LogReader, throwawayGroupId } from './log-reader.js';
import { planRanges, rangeSize, type StartAt, type StopAt } from './offsets.js';
import type { ProgressBar } from './progress.js';

export interface ReplayOptions {
  /** Full topic names (with the configured prefix). */
  readonly topics: readonly string[];
  readonly start: StartAt;
  readonly stop: StopAt;
  readonly filter: ReplayFilter;
  readonly formatter: Formatter;
  readonly sink: TextSink;
  /** The consumer group prefix; the replay's throwaway group is named `<prefix>-replay-<uuid>`. */
  readonly groupPrefix: string;
  /** Ends a --follow replay (or any replay early); what was read so far is written. */
  readonly signal?: AbortSignal;
  readonly progress?: ProgressBar;
  readonly log?: Logger;
}

export interface ReplaySummary {
  /** Records read from the log. */
  readonly read: number;
  /** Events that passed the filter and were written. */
  readonly matched: number;
  /** Records that could not be decoded (logged, not written). */
  readonly undecodable: number;
  readonly seconds: number;
}

/**
 * Reads the topics from the start to the stop, decodes every record through the registry (older
 * schema versions come out in the shape of the schemas the codec registered), keeps what the
 * filter keeps and writes it through the formatter. Without --follow it stops at the end offsets
 * taken when it started.
 */
export async function replay(kafka: KafkaClient, codec: EventCodec, options: ReplayOptions): Promise<ReplaySummary> {
  const started = Date.now();
  const ranges = await planRanges(kafka, options.topics, options.start, options.stop);
  options.progress?.setTotal(rangeSize(ranges));
  let matched = 0;
  let undecodable = 0;
  await options.sink.write(options.formatter.header);

  const reader = new LogReader(kafka, { groupId: throwawayGroupId(options.groupPrefix, 'replay'), log: options.log });
  const note = () => `${matched.toLocaleString('en-US')} matched`;
  try {
    await reader.start(ranges, async (topic, partition, messages) => {
      let text = '';
      for (const message of messages) {
        const key = message.key?.toString() ?? null;
        try {
          if (!message.value) throw new Error('the record has no value');
          const event = await codec.decode(message.value);
          if (!matchesFilter(options.filter, key, event)) continue;
          text += options.formatter.line({ topic, partition, offset: message.offset, key, event });
          matched++;
        } catch (error) {
          undecodable++;
          options.log?.warn({ topic, partition, offset: message.offset, err: error }, 'record not decoded; skipped');
        }
      }
      await options.sink.write(text);
      options.progress?.update(reader.recordsRead + messages.length, note());
    });
    await Promise.race([reader.whenDone(), untilAborted(options.signal ?? new AbortController().signal)]);
  } finally {
    await reader.stop();
    options.progress?.finish(note());
  }
  return { read: reader.recordsRead, matched, undecodable, seconds: (Date.now() - started) / 1000 };
}
