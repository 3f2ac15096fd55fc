import { parseArgs } from 'node:util';

/** What one `npm run bench` measures, from its command line (node:util parseArgs). */
export interface BenchOptions {
  /** Seconds each measured phase runs. */
  readonly durationSeconds: number;
  /** Keep-alive connections of the single-message phase. */
  readonly connections: number;
  /** Keep-alive connections of the batch phase (each holds one batch in flight). */
  readonly batchConnections: number;
  /** Messages per batch request. */
  readonly batchSize: number;
  /** Messages/s of the delivery phase; undefined: half the sustained batch rate. */
  readonly deliveryRate: number | undefined;
  /** Messages/s the open-loop accept phase offers, and messages per request. */
  readonly openRate: number;
  readonly openBatch: number;
  /** WebSocket recipients of the delivery phase. */
  readonly recipients: number;
  /** Characters of ciphertext per message (a base64url string, like a compact JWE). */
  readonly contentBytes: number;
  /** Run the ingress with --cpu-prof and summarize the profile. */
  readonly profile: boolean;
  readonly quick: boolean;
  /** Leave the topics, schema and Redis keys in place after the run. */
  readonly keep: boolean;
  readonly phases: readonly PhaseName[];
}

export const PHASES = ['baseline', 'single', 'batch', 'hot', 'reads', 'delivery', 'open', 'scaling', 'replay'] as const;
export type PhaseName = (typeof PHASES)[number];

export const USAGE = `usage: npm run bench -- [options]

Measures, one after another on a fresh topic prefix, schema and Redis prefix: raw kafkajs produce
(the ceiling), POST /api/v1/message/relay, POST /api/v1/message/relay/batch (spread over many
recipients, then all to one hot recipient), read-your-writes latency, WebSocket delivery at a
fixed rate, accept latency at a fixed rate (open), and the batch load against one and then two
ingress processes (scaling). Ends with a cost model: CPU per message of each component and the
rate it predicts for 2, 4 and 8 cores. Prints a Markdown report and saves it under bench/results/.

  --duration <s>            seconds per phase (default 20; 5 with --quick)
  --connections <n>         connections of the single-message phase (default 64)
  --batch-connections <n>   connections of the batch phase (default 4)
  --batch-size <n>          messages per batch request (default 200, at most 500)
  --delivery-rate <n>       messages/s of the delivery phase (default: half the batch rate)
  --recipients <n>          WebSocket recipients of the delivery phase (default 50)
  --open-rate <n>           messages/s of the open-loop accept phase (default 3000)
  --open-batch <n>          messages per request of the open-loop accept phase (default 50)
  --content-bytes <n>       ciphertext characters per message (default 512)
  --phases <list>           comma-separated subset of ${PHASES.join(',')} (default: all)
  --profile                 CPU-profile the ingress (bench/results/profiles/) and summarize it
  --quick                   5 s phases, for a smoke run
  --keep                    keep the topics, schema and Redis keys afterwards
  --help                    this text`;

const positive = (raw: string | undefined, name: string, fallback: number, max = 1_000_000): number => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new Error(`--${name} must be a whole number from 1 to ${max}, not "${raw}"`);
  return value;
};

/** Parses the command line; returns undefined for --help. */
export function parseOptions(argv: readonly string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      'batch-connections': { type: 'string' },
      'batch-size': { type: 'string' },
      'delivery-rate': { type: 'string' },
      recipients: { type: 'string' },
      'open-rate': { type: 'string' },
      'open-batch': { type: 'string' },
      'content-bytes': { type: 'string' },
      phases: { type: 'string' },
      profile: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick ?? false;
  const phases = values.phases === undefined ? [...PHASES] : values.phases.split(',').map((p) => p.trim());
  for (const phase of phases) {
    if (!(PHASES as readonly string[]).includes(phase))
      throw new Error(`--phases: unknown phase "${phase}"; phases are ${PHASES.join(', ')}`);
  }
  return {
    durationSeconds: positive(values.duration, 'duration', quick ? 5 : 20, 3600),
    connections: positive(values.connections, 'connections', 64, 4096),
    batchConnections: positive(values['batch-connections'], 'batch-connections', 4, 4096),
    batchSize: positive(values['batch-size'], 'batch-size', 200, 500),
    deliveryRate:
      values['delivery-rate'] === undefined ? undefined : positive(values['delivery-rate'], 'delivery-rate', 1),
    recipients: positive(values.recipients, 'recipients', 50, 10_000),
    openRate: positive(values['open-rate'], 'open-rate', 3000),
    openBatch: positive(values['open-batch'], 'open-batch', 50, 500),
    contentBytes: positive(values['content-bytes'], 'content-bytes', 512, 65_536),
    profile: values.profile ?? false,
    quick,
    keep: values.keep ?? false,
    phases: phases as PhaseName[],
  };
}
