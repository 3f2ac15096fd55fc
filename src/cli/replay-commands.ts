import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { loadEventSchemas } from '../events/schemas.js';
import { TOPIC, TOPIC_OF } from '../events/topics.js';
import { EVENT_TYPES, type EventType } from '../events/types.js';
import type { Resources } from '../app/resources.js';
import { createLogger, flushLogs } from '../observability/logger.js';
import { describe } from '../errors/describe.js';
import { parseCommandLine } from './args.js';
import { parseAddress, parseEventType, parseTime, UsageError, type ReplayFilter } from '../replay/filters.js';
import { csv, csvColumns, fieldsOf, FORMATS, jsonLines, TextSink, type OutputFormat } from '../replay/formats.js';
import { consumerLag, renderLagTable } from '../replay/lag.js';
import type { StartAt, StopAt } from '../replay/offsets.js';
import { ProgressBar } from '../replay/progress.js';
import { rebuildReadModel, RebuildInterrupted } from '../replay/rebuild.js';
import { replay } from '../replay/replay-reader.js';

export const ANALYST_COMMANDS = ['replay', 'lag', 'rebuild'] as const;
export type AnalystCommand = (typeof ANALYST_COMMANDS)[number];

export const isAnalystCommand = (value: string): value is AnalystCommand =>
  (ANALYST_COMMANDS as readonly string[]).includes(value);

/** The lines `relay help` shows for these commands. */
export const ANALYST_USAGE = `Analysts (\`relay <command> --help\` for options):
  replay      decode events from the log to JSON Lines or CSV, filtered by time, address, type
  lag         each consumer group's committed offset, log end offset and lag, per partition
  rebuild     rebuild the Postgres read model from the log while the projector runs, then switch`;

const REPLAY_USAGE = `usage: relay replay [options]

Reads relay.mailbox.v1 and relay.peers.v1, decodes each event through the schema registry, and
writes one line per event: topic, partition, offset, key, type, the event's fields, and
occurred_at_iso (occurred_at as ISO 8601 UTC).

Where to start (default: the earliest offset of every partition):
  --since TIME              at the first record stamped TIME or later; keeps events that occurred at or after TIME
  --from-offset N|P:N,...   at offset N in every partition, or at N in partition P (other partitions are skipped)
Where to stop (default: the end of every partition when the replay starts):
  --until TIME              keeps events that occurred before TIME
  -f, --follow              keep reading new events until interrupted (Ctrl-C)
Filters (repeat an option to allow several values):
  --topic mailbox|peers     default: both, or those that carry the --type values
  --address ADDRESS         the event's key, to_address, from_address or address is ADDRESS
  --type TYPE               ${EVENT_TYPES.join(', ')}
Output:
  --format jsonl|csv        default jsonl (csv when --out ends in .csv)
  -o, --out FILE            write to FILE instead of standard output
  --progress, --no-progress a progress bar on standard error; by default when standard error is a
                            terminal and the output is not
TIME: an ISO 8601 time (2025-01-31T12:00:00Z; UTC without a zone), epoch milliseconds, "now",
or an age: 30s, 15m, 2h, 7d.`;

const LAG_USAGE = `usage: relay lag [--json] [--group NAME]...

For each consumer group named <RELAY_CONSUMER_GROUP_PREFIX>.* (projector, presence, router) and
each partition it reads: the committed offset, the log end offset, and the lag between them.
  --json          one JSON document on standard output instead of a table
  --group NAME    only this group (its full id, or the part after the prefix, such as projector)`;

const REBUILD_USAGE = `usage: relay rebuild read_model [options]

Replays the log from the earliest offsets into a new schema (<schema>_rebuild) while the live
projector keeps running, then pauses the projector for a moment, catches up to its checkpoints,
and swaps the schemas in one transaction. Safe to run again after a crash.
  --keep-retired            keep the old schema as <schema>_retired_<time> instead of dropping it
  --allow-truncated-log     rebuild even though retention deleted the oldest records
  --progress, --no-progress a progress bar on standard error (default: when it is a terminal)`;

/** Where a command writes; the process's streams unless a test passes its own. */
export interface CommandIo {
  readonly stdout: Writable & { readonly isTTY?: boolean };
  readonly stderr: Writable & { readonly isTTY?: boolean; readonly columns?: number };
}

const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

export interface ReplayArgs {
  readonly topics: readonly ('mailbox' | 'peers')[];
  readonly start: StartAt;
  readonly stop: StopAt;
  readonly filter: ReplayFilter;
  readonly format: OutputFormat;
  readonly out: string | undefined;
  /** Forced on or off; undefined: decide by the terminal. */
  readonly progress: boolean | undefined;
}

const progressChoice = (values: { progress?: boolean; 'no-progress'?: boolean }): boolean | undefined => {
  if (values.progress && values['no-progress']) throw new UsageError('--progress and --no-progress exclude each other');
  return values.progress ? true : values['no-progress'] ? false : undefined;
};

const topicName = (raw: string): 'mailbox' | 'peers' => {
  for (const [name, full] of Object.entries(TOPIC)) {
    if ((name === 'mailbox' || name === 'peers') && (raw === name || raw === full)) return name;
  }
  throw new UsageError(`--topic must be mailbox or peers (${TOPIC.mailbox}, ${TOPIC.peers}), not "${raw}"`);
};

function parseFromOffset(raw: string): StartAt {
  if (/^\d+$/.test(raw)) return { kind: 'offset', all: BigInt(raw) };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(raw)) {
    const partitions = new Map<number, bigint>();
    for (const pair of raw.split(',')) {
      const [partition, offset] = pair.split(':');
      partitions.set(Number(partition), BigInt(offset ?? '0'));
    }
    return { kind: 'offset', partitions };
  }
  throw new UsageError(`--from-offset must be an offset (1200) or partition:offset pairs (0:1200,3:40), not "${raw}"`);
}

/** The options of `relay replay`, or 'help'. Throws UsageError with a one-line reason. */
export function parseReplayArgs(args: readonly string[], now: number = Date.now()): ReplayArgs | 'help' {
  const { values } = parseCommandLine(args, {
    help: { type: 'boolean', short: 'h' },
    since: { type: 'string' },
    'from-offset': { type: 'string' },
    'from-beginning': { type: 'boolean' },
    until: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
    topic: { type: 'string', multiple: true },
    address: { type: 'string', multiple: true },
    type: { type: 'string', multiple: true },
    format: { type: 'string' },
    out: { type: 'string', short: 'o' },
    progress: { type: 'boolean' },
    'no-progress': { type: 'boolean' },
  });
  if (values.help) return 'help';

  const starts = [
    values.since !== undefined,
    values['from-offset'] !== undefined,
    values['from-beginning'] === true,
  ].filter(Boolean).length;
  if (starts > 1) throw new UsageError('choose one start: --since, --from-offset or --from-beginning');
  if (values.until !== undefined && values.follow) throw new UsageError('--until and --follow exclude each other');

  const since = values.since === undefined ? undefined : parseTime(values.since, '--since', now);
  const until = values.until === undefined ? undefined : parseTime(values.until, '--until', now);
  if (since !== undefined && until !== undefined && since >= until)
    throw new UsageError('--since must be before --until');
  const start: StartAt =
    since !== undefined
      ? { kind: 'time', at: since }
      : values['from-offset'] !== undefined
        ? parseFromOffset(values['from-offset'])
        : { kind: 'beginning' };
  const stop: StopAt = values.follow
    ? { kind: 'follow' }
    : until !== undefined
      ? { kind: 'time', at: until }
      : { kind: 'now' };

  const types = values.type?.map(parseEventType);
  const addresses = values.address?.map(parseAddress);
  const chosenTopics = values.topic?.map(topicName);
  let topics: ('mailbox' | 'peers')[];
  if (chosenTopics) {
    topics = [...new Set(chosenTopics)];
    const orphan = types?.find((type) => !topics.includes(TOPIC_OF[type] as 'mailbox' | 'peers'));
    if (orphan) throw new UsageError(`--type ${orphan} is on the ${TOPIC_OF[orphan]} topic, which --topic leaves out`);
  } else {
    topics = types ? [...new Set(types.map((type) => TOPIC_OF[type] as 'mailbox' | 'peers'))] : ['mailbox', 'peers'];
  }

  const out = values.out;
  let format: OutputFormat = out?.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl';
  if (values.format !== undefined) {
    if (!(FORMATS as readonly string[]).includes(values.format))
      throw new UsageError(`--format must be jsonl or csv, not "${values.format}"`);
    format = values.format as OutputFormat;
  }

  const filter: ReplayFilter = {
    ...(addresses ? { addresses: new Set(addresses) } : {}),
    ...(types ? { types: new Set<EventType>(types) } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  };
  return { topics, start, stop, filter, format, out, progress: progressChoice(values) };
}

export function parseLagArgs(
  args: readonly string[],
): { readonly json: boolean; readonly groups: readonly string[] } | 'help' {
  const { values } = parseCommandLine(args, {
    help: { type: 'boolean', short: 'h' },
    json: { type: 'boolean' },
    group: { type: 'string', multiple: true },
  });
  if (values.help) return 'help';
  return { json: values.json ?? false, groups: values.group ?? [] };
}

export interface RebuildArgs {
  readonly keepRetired: boolean;
  readonly allowTruncatedLog: boolean;
  readonly progress: boolean | undefined;
}

export function parseRebuildArgs(args: readonly string[]): RebuildArgs | 'help' {
  const { values, positionals } = parseCommandLine(
    args,
    {
      help: { type: 'boolean', short: 'h' },
      'keep-retired': { type: 'boolean' },
      'allow-truncated-log': { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
    { positionals: true },
  );
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('name what to rebuild: relay rebuild read_model');
  if (positionals.length > 1 || positionals[0] !== 'read_model') {
    throw new UsageError(
      `only the read model can be rebuilt (relay rebuild read_model), not "${positionals.join(' ')}"`,
    );
  }
  return {
    keepRetired: values['keep-retired'] ?? false,
    allowTruncatedLog: values['allow-truncated-log'] ?? false,
    progress: progressChoice(values),
  };
}

/** Aborts on the first SIGINT or SIGTERM while `work` runs. */
async function withSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function runReplay(args: ReplayArgs, resources: Resources, io: CommandIo): Promise<number> {
  const { codec, topics, config } = resources;
  // Registering is idempotent: it gives the codec this version's schemas, so events written with
  // older versions come out in the current shape (new fields with their defaults).
  const schemas = await loadEventSchemas();
  await codec.registerAll(schemas);
  const eventTypes = args.filter.types
    ? [...args.filter.types]
    : EVENT_TYPES.filter((type) => args.topics.includes(TOPIC_OF[type] as 'mailbox' | 'peers'));
  const formatter = args.format === 'csv' ? csv(csvColumns(fieldsOf(schemas), eventTypes)) : jsonLines();
  const stream = args.out ? createWriteStream(args.out) : io.stdout;
  const sink = new TextSink(stream);
  const showProgress =
    args.progress ?? (io.stderr.isTTY === true && (args.out !== undefined || io.stdout.isTTY !== true));
  const progress = showProgress ? new ProgressBar(io.stderr, 'replay', null) : undefined;
  try {
    await withSignals((signal) =>
      replay(resources.kafka, codec, {
        topics: args.topics.map((name) => topics[name]),
        start: args.start,
        stop: args.stop,
        filter: args.filter,
        formatter,
        sink,
        groupPrefix: config.kafka.groupPrefix,
        signal,
        ...(progress ? { progress } : {}),
        log: resources.log,
      }),
    );
  } catch (error) {
    // The reader of our output went away (`relay replay | head`): that is the end, not a failure.
    if (
      (error as { code?: unknown }).code === 'EPIPE' ||
      (sink.error as { code?: unknown } | undefined)?.code === 'EPIPE'
    )
      return 0;
    throw error;
  }
  if (args.out) await sink.end();
  return 0;
}

async function runLag(
  args: { json: boolean; groups: readonly string[] },
  resources: Resources,
  io: CommandIo,
): Promise<number> {
  const prefix = resources.config.kafka.groupPrefix;
  const wanted = new Set(args.groups.map((g) => (g.startsWith(`${prefix}.`) ? g : `${prefix}.${g}`)));
  const groups = (
    await consumerLag(resources.kafka, prefix, [resources.topics.mailbox, resources.topics.peers])
  ).filter((g) => wanted.size === 0 || wanted.has(g.group));
  io.stdout.write(args.json ? `${JSON.stringify({ groups }, null, 2)}\n` : renderLagTable(groups));
  return 0;
}

async function runRebuild(args: RebuildArgs, resources: Resources, io: CommandIo): Promise<number> {
  await resources.codec.registerAll();
  const showBar = args.progress ?? io.stderr.isTTY === true;
  let bar: ProgressBar | undefined;
  const say = (text: string) => io.stderr.write(`${bar ? '\r\x1b[K' : ''}relay rebuild: ${text}\n`);
  try {
    const result = await withSignals((signal) =>
      rebuildReadModel(resources, {
        keepRetired: args.keepRetired,
        allowTruncatedLog: args.allowTruncatedLog,
        signal,
        reporter: {
          phase: say,
          progress: (done, total) => {
            if (!showBar) return;
            bar ??= new ProgressBar(io.stderr, 'rebuild', total);
            bar.setTotal(total);
            bar.update(done);
          },
        },
      }),
    );
    bar?.finish();
    bar = undefined;
    say(
      `done in ${result.seconds.toFixed(1)} s: ${result.events.toLocaleString('en-US')} records replayed` +
        `${result.skipped > 0 ? ` (${result.skipped} skipped, see the log)` : ''}` +
        `${result.retired ? `; the old read model is kept as ${result.retired}` : ''}`,
    );
    return 0;
  } finally {
    bar?.finish();
  }
}

/**
 * `relay replay|lag|rebuild ARGS`: parses the arguments, runs the command, and returns the exit
 * code: 0 done, 1 failed, 2 a bad argument (with a one-line reason on stderr), 130 interrupted.
 */
export async function runAnalystCommand(
  command: AnalystCommand,
  args: readonly string[],
  resources: Resources,
  io: CommandIo = processIo,
): Promise<number> {
  const usage = { replay: REPLAY_USAGE, lag: LAG_USAGE, rebuild: REBUILD_USAGE }[command];
  // These commands talk to people on stderr; only warnings and errors go to the JSON log.
  const log = createLogger(resources.config.logLevel === 'debug' ? 'debug' : 'warn', { command });
  const quiet: Resources = { ...resources, log };
  try {
    switch (command) {
      case 'replay': {
        const parsed = parseReplayArgs(args);
        if (parsed === 'help') break;
        return await runReplay(parsed, quiet, io);
      }
      case 'lag': {
        const parsed = parseLagArgs(args);
        if (parsed === 'help') break;
        return await runLag(parsed, quiet, io);
      }
      case 'rebuild': {
        const parsed = parseRebuildArgs(args);
        if (parsed === 'help') break;
        return await runRebuild(parsed, quiet, io);
      }
    }
    io.stdout.write(`${usage}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`relay ${command}: ${error.message} (see relay ${command} --help)\n`);
      return 2;
    }
    const interrupted = error instanceof RebuildInterrupted;
    const detail =
      resources.config.logLevel === 'debug' ? describe(error) : ((error as Error).message ?? String(error));
    flushLogs();
    io.stderr.write(`relay ${command}: ${detail}\n`);
    return interrupted ? 130 : 1;
  }
}
