import { COST_CORES, ROLE_COMPONENTS, STORE_COMPONENTS, type CostModel } from './cost-model.js';
import type { ProfileSummary } from './cpu-profile.js';
import type { IngressView } from './ingress-metrics.js';
import type { BaselineResult } from './phases/baseline.js';
import type { DeliveryResult } from './phases/delivery.js';
import type { HttpLoadResult } from './phases/http-load.js';
import type { OpenAcceptResult } from './phases/open-accept.js';
import type { ReadsResult } from './phases/reads.js';
import type { ProjectionLag } from './projection-probe.js';
import type { Distribution } from './samples.js';
import type { WindowUsage } from './watched-processes.js';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly node: string;
  readonly kafka: string;
  readonly os: string;
  readonly loadAverageAtStart: readonly number[];
  readonly commit: string;
}

/** What one phase cost: CPU over the load and the drain after it, peak memory. */
export interface PhaseCost {
  /** CPU while the load ran (cores used = cpuSeconds / seconds). */
  readonly duringLoad: WindowUsage;
  /** CPU from the start of the load until the read model caught up (or the wait ended): what the phase's messages cost. */
  readonly untilSettled: WindowUsage;
  /** CPU seconds per 1,000 accepted messages, per process, over `untilSettled`. */
  readonly cpuPer1000: Readonly<Record<string, number>>;
}

export interface HttpPhase {
  readonly load: HttpLoadResult;
  readonly ingress: IngressView;
  readonly projection: ProjectionLag;
  readonly keptUp: boolean;
  readonly cost: PhaseCost;
  readonly ratioToBaseline: number | undefined;
}

export interface DeliveryPhase {
  readonly delivery: DeliveryResult;
  readonly ingress: IngressView;
  readonly projection: ProjectionLag;
  readonly keptUp: boolean;
  readonly cost: PhaseCost;
  readonly ratioToBaseline: number | undefined;
}

export interface OpenPhase {
  readonly open: OpenAcceptResult;
  readonly ingress: IngressView;
  readonly projection: ProjectionLag;
  readonly keptUp: boolean;
  readonly cost: PhaseCost;
  readonly ratioToBaseline: number | undefined;
}

/** The closed-loop batch load against `ingresses` ingress processes, its connections dealt out between them. */
export interface ScalingStep {
  readonly ingresses: number;
  /** One load per ingress process. */
  readonly loads: readonly HttpLoadResult[];
  readonly messagesPerSecond: number;
  readonly projection: ProjectionLag;
  readonly keptUp: boolean;
  readonly cost: PhaseCost;
}

export interface Target {
  readonly name: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly runId: string;
  readonly machine: Machine;
  readonly options: Readonly<Record<string, unknown>>;
  readonly setup: {
    readonly partitions: number;
    readonly replicationFactor: number;
    readonly contentBytes: number;
    readonly eventBytes: number;
    readonly singleBodyBytes: number;
    readonly senders: number;
    readonly recipients: number;
    /** CPU µs of one signature check in the load generator's process before the phases (the relay idle). */
    readonly verifyMicros: { readonly ed25519: number; readonly ed25519Sodium: number; readonly p256: number };
    readonly relayEnv: Readonly<Record<string, string>>;
  };
  readonly baseline?: { readonly result: BaselineResult; readonly usage: WindowUsage };
  readonly single?: HttpPhase;
  readonly batch?: HttpPhase;
  /** The batch path with every message to one recipient. */
  readonly hot?: HttpPhase;
  /** Send, then read the mailbox at once with the send's consistency token. */
  readonly reads?: ReadsResult;
  readonly delivery?: DeliveryPhase;
  /** Batches at a fixed rate, latency from each request's scheduled send. */
  readonly open?: OpenPhase;
  /** The batch load against one, then two ingress processes. */
  readonly scaling?: { readonly steps: readonly ScalingStep[] };
  /** From the batch phase's CPU per message: the rate 2, 4 and 8 cores would sustain. */
  readonly costModel?: CostModel;
  /** `relay replay` of the mailbox topic to JSON Lines, and a raw kafkajs read of it, in the same run. */
  readonly replay?: {
    readonly decoded: { events: number; seconds: number };
    readonly raw: { events: number; seconds: number };
  };
  readonly profiles: readonly ProfileSummary[];
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
}

const int = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US');
const ms = (n: number | undefined): string => {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (n >= 100) return `${Math.round(n).toLocaleString('en-US')} ms`;
  if (n >= 10) return `${n.toFixed(1)} ms`;
  return `${n.toFixed(2)} ms`;
};
const pct = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n) ? '–' : `${Math.round(n * 100)} %`;
const mb = (n: number | undefined): string => (n === undefined ? '–' : `${Math.round(n / 1024 / 1024)}`);
const cpu = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(3));
const cores = (usage: WindowUsage, name: string): string => {
  const used = usage.processes[name]?.cpuSeconds;
  return used === undefined || usage.seconds <= 0 ? '–' : (used / usage.seconds).toFixed(2);
};
const spread = (s: { min: number; median: number; max: number } | undefined) =>
  s ? `${int(s.min)} / ${int(s.median)} / ${int(s.max)}` : '–';
const yes = (b: boolean | undefined) => (b === undefined ? 'not judged' : b ? '**met**' : '**not met**');
const lat = (d: Distribution) => [ms(d.p50), ms(d.p99), ms(d.p999)];
const refusedText = (refused: Readonly<Record<string, number>>, errors = 0, timeouts = 0): string => {
  const parts = Object.entries(refused).map(([k, v]) => `${k}: ${int(v)}`);
  if (errors > 0) parts.push(`errors: ${int(errors)}`);
  if (timeouts > 0) parts.push(`timeouts: ${int(timeouts)}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
};

const lagText = (p: ProjectionLag) => `${ms(p.lag.p50)} / ${ms(p.lag.p99)}`;
const keptUpText = (keptUp: boolean, p: ProjectionLag) => {
  const after =
    p.caughtUpAfterSeconds === undefined
      ? `still ${int(p.expectedRows - p.rows)} rows behind`
      : `caught up ${p.caughtUpAfterSeconds.toFixed(1)} s after`;
  return `${keptUp ? 'yes' : '**no**'} (${after}; lag p50 ${ms(p.firstThirdP50)} → ${ms(p.lastThirdP50)})`;
};

/** The report as Markdown: the throughput table first, then targets, cost, memory, profile and notes. */
export function renderMarkdown(r: BenchReport, processNames: readonly string[], ours: readonly string[]): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# Relay benchmark, ${r.startedAt.replace('T', ' ').slice(0, 19)} UTC`, '');
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB; ${m.os}; Node.js ${m.node}; Apache Kafka ${m.kafka} (one KRaft broker), ` +
      `with the registry, PostgreSQL and Redis on the same machine. Load average at start: ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(', ')}. Commit ${m.commit}.`,
    '',
    `Each message: ${int(r.setup.contentBytes)} characters of ciphertext, an Ed25519 compact JWS; ${int(r.setup.eventBytes)} bytes as a MessageSent event ` +
      `(${int(r.setup.singleBodyBytes)} bytes as a JSON request). Topics of ${r.setup.partitions} partitions, replication ${r.setup.replicationFactor}; ` +
      `${r.setup.senders} senders, ${int(r.setup.recipients)} recipients. Phases of ${String(r.options['durationSeconds'])} s each.`,
    '',
    `For scale: one signature check cost ${Math.round(r.setup.verifyMicros.ed25519Sodium)} µs of CPU for Ed25519 with libsodium (as the ingress checks it), ` +
      `${Math.round(r.setup.verifyMicros.ed25519)} µs with node:crypto (cached key) and ${Math.round(r.setup.verifyMicros.p256)} µs for P-256 on this machine just before the phases, ` +
      `so 10,000 Ed25519 messages/s need ${((r.setup.verifyMicros.ed25519Sodium * 10_000) / 1e6).toFixed(2)} cores for their signatures alone.`,
    '',
  );

  out.push('## Throughput and latency', '');
  out.push(
    '| phase | messages/s | of raw Kafka | p50 | p99 | p99.9 | accepted→row p50 / p99 | projector kept up | refused |',
  );
  out.push('|---|--:|--:|--:|--:|--:|--:|---|---|');
  if (r.baseline) {
    const b = r.baseline.result;
    out.push(
      `| raw kafkajs produce (ceiling; latency per ${int(b.recordsPerRequest)}-record request) | ${int(b.recordsPerSecond)} | 100 % | ${lat(b.requestLatency).join(' | ')} | – | – | – |`,
    );
  }
  const httpRow = (label: string, s: HttpPhase) =>
    `| ${label} | ${int(s.load.messagesPerSecond)}${s.load.poolExhausted ? ' (pool ran out: at least)' : ''} | ${pct(s.ratioToBaseline)} | ${lat(s.load.latency).join(' | ')} | ${lagText(s.projection)} | ${keptUpText(s.keptUp, s.projection)} | ${refusedText(s.load.refused, s.load.errors, s.load.timeouts)} |`;
  if (r.single)
    out.push(httpRow(`single \`POST /message/relay\` (${r.single.load.connections} connections)`, r.single));
  if (r.batch)
    out.push(
      httpRow(
        `batch \`POST /message/relay/batch\` (${r.batch.load.messagesPerRequest}/request, ${r.batch.load.connections} connections)`,
        r.batch,
      ),
    );
  if (r.hot)
    out.push(
      httpRow(
        `batch, every message to one recipient (${r.hot.load.messagesPerRequest}/request, ${r.hot.load.connections} connections)`,
        r.hot,
      ),
    );
  if (r.delivery) {
    const d = r.delivery.delivery;
    out.push(
      `| delivery: accept (${d.recipients} WebSocket recipients, ${int(d.targetRate)} msg/s offered, ${d.messagesPerRequest}/request) | ${int(d.messagesPerSecond)} | ${pct(r.delivery.ratioToBaseline)} | ${lat(d.acceptLatency).join(' | ')} | ${lagText(r.delivery.projection)} | ${keptUpText(r.delivery.keptUp, r.delivery.projection)} | ${refusedText(d.refused)} |`,
    );
    out.push(
      `| delivery: send → frame on the recipient's socket | ${int(d.delivered)} delivered, ${int(d.missing)} missing | | ${lat(d.deliveryLatency).join(' | ')} | | | duplicates: ${d.duplicates}, late sends: ${d.lateSends} |`,
    );
  }
  if (r.open) {
    const o = r.open.open;
    out.push(
      `| open loop: ${int(o.targetRate)} msg/s offered, ${o.messagesPerRequest}/request (latency from the scheduled send) | ${int(o.messagesPerSecond)} | ${pct(r.open.ratioToBaseline)} | ${lat(o.latency).join(' | ')} | ${lagText(r.open.projection)} | ${keptUpText(r.open.keptUp, r.open.projection)} | ${refusedText(o.refused)} |`,
    );
  }
  out.push('');
  out.push(
    "Latencies are per HTTP request as the load generator saw it (a batch's messages are all answered with their request); raw Kafka's are per `sendBatch`. " +
      '"accepted→row" is from the 202 (or batch answer) to the row being visible in `messages`, for a sample of messages, polled every 50 ms (so up to 50 ms high). ' +
      'Per-second accepted messages (min / median / max): ' +
      [
        r.baseline ? `raw Kafka ${spread(r.baseline.result.perSecond)}` : '',
        r.single ? `single ${spread(r.single.load.perSecond)}` : '',
        r.batch ? `batch ${spread(r.batch.load.perSecond)}` : '',
      ]
        .filter(Boolean)
        .join('; ') +
      '.',
    '',
  );

  if (r.reads) {
    const x = r.reads;
    out.push('## Reading your own writes', '');
    out.push(
      `${int(x.pairs)} times, one after another: \`POST /message/relay\`, then at once \`GET /messages\` of its recipient with the answer's consistency token, then the same read again. ` +
        'The first read waits until the projector has applied the write; the second has nothing to wait for. ' +
        `First reads answered stale: ${int(x.stale)}; first reads without the message: ${int(x.missing)}.`,
      '',
    );
    out.push('| read | p50 | p99 | p99.9 |', '|---|--:|--:|--:|');
    out.push(`| right after the 202, with the token | ${lat(x.firstRead).join(' | ')} |`);
    out.push(`| the same read again | ${lat(x.secondRead).join(' | ')} |`);
    out.push(`| added by waiting for the write (per pair) | ${lat(x.added).join(' | ')} |`, '');
  }

  const views: [string, IngressView | undefined, number][] = [
    ['single', r.single?.ingress, r.single?.load.seconds ?? 0],
    ['batch', r.batch?.ingress, r.batch?.load.seconds ?? 0],
    ['hot recipient', r.hot?.ingress, r.hot?.load.seconds ?? 0],
    ['delivery', r.delivery?.ingress, r.delivery?.delivery.seconds ?? 0],
    ['open loop', r.open?.ingress, r.open?.open.seconds ?? 0],
  ];
  if (views.some(([, v]) => v)) {
    out.push('Inside the ingress (its /metrics, read before and after each load):', '');
    out.push(
      '| phase | produce requests/s | records per produce request | time in the server: mean / p99 at most | event-loop delay p99 / max | shed (503) |',
    );
    out.push('|---|--:|--:|--:|--:|--:|');
    for (const [name, v, seconds] of views) {
      if (!v) continue;
      out.push(
        `| ${name} | ${int(v.produceRequests / Math.max(0.001, seconds))} | ${v.recordsPerProduce.toFixed(1)} | ${ms(v.serverMeanMs)} / ${v.serverP99AtMostMs === undefined ? '> 2.5 s' : ms(v.serverP99AtMostMs)} | ${ms(v.eventLoopDelayP99Ms)} / ${ms(v.eventLoopDelayMaxMs)} | ${int(v.loadShed)} |`,
      );
    }
    out.push('');
  }

  if (r.replay) {
    const rate = (s: { events: number; seconds: number }) => (s.seconds > 0 ? Math.round(s.events / s.seconds) : 0);
    out.push('## Replay', '');
    out.push('The mailbox topic as the phases left it, read from the beginning to its end.', '');
    out.push('| read | events | seconds | events/s | of raw |', '|---|--:|--:|--:|--:|');
    out.push(
      `| raw kafkajs consume (no decoding) | ${r.replay.raw.events.toLocaleString('en-US')} | ${r.replay.raw.seconds.toFixed(2)} | ${rate(r.replay.raw).toLocaleString('en-US')} | 100 % |`,
    );
    out.push(
      `| \`relay replay\` to JSON Lines (decoded through the registry) | ${r.replay.decoded.events.toLocaleString('en-US')} | ${r.replay.decoded.seconds.toFixed(2)} | ${rate(r.replay.decoded).toLocaleString('en-US')} | ${rate(r.replay.raw) ? Math.round((100 * rate(r.replay.decoded)) / rate(r.replay.raw)) : 0} % |`,
      '',
    );
  }
  if (r.open) renderOpen(out, r.open);
  if (r.scaling) renderScaling(out, r.scaling.steps, r.costModel);
  if (r.costModel) renderCostModel(out, r.costModel, r.batch);
  out.push('## Targets', '', '| target | measured | |', '|---|---|---|');
  for (const t of r.targets) out.push(`| ${t.name} | ${t.measured} | ${yes(t.met)} |`);
  out.push('');

  const phases: [string, PhaseCost | undefined, number][] = [
    ['single', r.single?.cost, r.single?.load.acceptedMessages ?? 0],
    ['batch', r.batch?.cost, r.batch?.load.acceptedMessages ?? 0],
    ['hot recipient', r.hot?.cost, r.hot?.load.acceptedMessages ?? 0],
    ['delivery', r.delivery?.cost, r.delivery?.delivery.acceptedMessages ?? 0],
    ['open loop', r.open?.cost, r.open?.open.acceptedMessages ?? 0],
  ];
  out.push('## CPU', '');
  out.push(
    'CPU seconds per 1,000 accepted messages, from the start of the load until the read model caught up; in brackets, the cores each used on average while the load ran ' +
      `(the machine has ${m.cores}). "others" is the rest of the machine's busy time (other work on the host, the registry, the kernel).`,
    '',
  );
  out.push(`| phase | ${processNames.join(' | ')} | whole machine | others |`);
  out.push(`|---|${processNames.map(() => '--:').join('|')}|--:|--:|`);
  if (r.baseline) {
    const u = r.baseline.usage;
    const per = (v: number) => cpu((v / Math.max(1, r.baseline!.result.records)) * 1000);
    out.push(
      `| raw Kafka | ${processNames.map((n) => `${per(u.processes[n]?.cpuSeconds ?? 0)} (${cores(u, n)})`).join(' | ')} | ${per(u.machineBusy)} (${(u.machineBusy / u.seconds).toFixed(2)}) | ${per(u.otherBusy)} (${(u.otherBusy / u.seconds).toFixed(2)}) |`,
    );
  }
  for (const [name, cost, accepted] of phases) {
    if (!cost) continue;
    const u = cost.duringLoad;
    const per = (v: number) => cpu((v / Math.max(1, accepted)) * 1000);
    out.push(
      `| ${name} | ${processNames.map((n) => `${cpu(cost.cpuPer1000[n])} (${cores(u, n)})`).join(' | ')} | ${per(cost.untilSettled.machineBusy)} (${(u.machineBusy / u.seconds).toFixed(2)}) | ${per(cost.untilSettled.otherBusy)} (${(u.otherBusy / u.seconds).toFixed(2)}) |`,
    );
  }
  out.push('');

  out.push('## Peak memory', '', `Peak RSS (VmHWM, MB) of each relay process during each phase.`, '');
  out.push(`| phase | ${ours.join(' | ')} |`, `|---|${ours.map(() => '--:').join('|')}|`);
  if (r.baseline)
    out.push(`| raw Kafka | ${ours.map((n) => mb(r.baseline!.usage.processes[n]?.peakRssBytes)).join(' | ')} |`);
  for (const [name, cost] of phases) {
    if (cost)
      out.push(`| ${name} | ${ours.map((n) => mb(cost.untilSettled.processes[n]?.peakRssBytes)).join(' | ')} |`);
  }
  out.push('');

  for (const p of r.profiles) {
    out.push(`## Ingress CPU profile: ${p.phase}`, '');
    out.push(
      `The ingress was busy ${p.busySeconds.toFixed(1)} s of the ${p.wallSeconds.toFixed(1)} s sampled (\`${p.file}\`). Self time, as a share of busy time.`,
      '',
    );
    out.push('| where the code lives | self | share |', '|---|--:|--:|');
    for (const a of p.areas.slice(0, 12)) out.push(`| ${a.name} | ${int(a.selfMs)} ms | ${pct(a.share)} |`);
    out.push('', '| function | at | self | share |', '|---|---|--:|--:|');
    for (const f of p.functions)
      out.push(`| \`${f.name}\` | ${f.where} | ${int(f.selfMs)} ms | ${(f.share * 100).toFixed(1)} % |`);
    out.push('');
  }

  if (r.notes.length > 0) {
    out.push('## Notes', '');
    for (const note of r.notes) out.push(`- ${note}`);
    out.push('');
  }
  return out.join('\n');
}

function renderOpen(out: string[], phase: OpenPhase): void {
  const o = phase.open;
  out.push('## Open-loop accept latency', '');
  out.push(
    `${int(o.requests)} requests of ${o.messagesPerRequest} messages, one every ${ms((1000 * o.messagesPerRequest) / o.targetRate)} (${int(o.targetRate)} msg/s) for ${o.seconds.toFixed(1)} s, ` +
      'each sent on its schedule whatever the answers to earlier ones did. Latency runs from the scheduled send time, so time a request spent waiting behind a slow answer ' +
      '(or behind the load generator) counts; from the actual send it would hide that queueing.',
    '',
  );
  out.push('| accept latency | p50 | p99 | p99.9 | max |', '|---|--:|--:|--:|--:|');
  out.push(`| from the scheduled send | ${lat(o.latency).join(' | ')} | ${ms(o.latency.max)} |`);
  out.push(`| from the actual send | ${lat(o.latencyFromSend).join(' | ')} | ${ms(o.latencyFromSend.max)} |`, '');
  out.push(
    `Offered ${int(o.offeredPerSecond)} msg/s; accepted ${int(o.acceptedMessages)} of ${int(o.sent)} messages, ${int(o.messagesPerSecond)} msg/s from the first scheduled send to the last answer; ` +
      `refused or failed: ${refusedText(o.refused)}. ` +
      `Requests the load generator sent more than one interval late: ${int(o.lateSends)} (worst ${ms(o.maxSendLagMs)} late).`,
    '',
  );
}

const MODEL_COLUMNS = [...ROLE_COMPONENTS, ...STORE_COMPONENTS];

function renderScaling(out: string[], steps: readonly ScalingStep[], model: CostModel | undefined): void {
  const one = steps.find((s) => s.ingresses === 1)?.messagesPerSecond;
  const first = steps[0]?.loads[0];
  out.push('## Scaling with ingress processes', '');
  out.push(
    `The batch phase's closed-loop load (${first?.messagesPerRequest ?? '–'}/request) against one ingress process, then with its connections dealt out between two ` +
      '(started alike, each on its own port and node id), one after the other. CPU-ms per accepted message, from the start of the load until the read model caught up.',
    '',
  );
  const names = ['ingress', 'ingress 2', 'projector', 'presence', 'router', 'kafka', 'postgres', 'redis'];
  out.push(
    `| ingress processes | connections | messages/s | of one | p99 per ingress | projector kept up | ${names.join(' | ')} | all together | load generator | cores used |`,
  );
  out.push(`|--:|---|--:|--:|---|---|${names.map(() => '--:').join('|')}|--:|--:|--:|`);
  for (const s of steps) {
    const c = s.cost.cpuPer1000;
    const together = names.reduce((sum, n) => sum + (c[n] ?? 0), 0);
    const u = s.cost.duringLoad;
    const ingressCell = (n: string) => (n === 'ingress 2' && s.ingresses < 2 ? '–' : cpu(c[n]));
    out.push(
      `| ${s.ingresses} | ${s.loads.map((l) => l.connections).join(' + ')} | ${int(s.messagesPerSecond)}${s.loads.some((l) => l.poolExhausted) ? ' (pool ran out: at least)' : ''} | ` +
        `${one ? `${(s.messagesPerSecond / one).toFixed(2)} ×` : '–'} | ${s.loads.map((l) => ms(l.latency.p99)).join(' / ')} | ${keptUpText(s.keptUp, s.projection)} | ` +
        `${names.map(ingressCell).join(' | ')} | ${cpu(together)} | ${cpu(c['load generator'])} | ${(u.machineBusy / Math.max(0.001, u.seconds)).toFixed(2)} |`,
    );
  }
  out.push('');
  const second = steps.find((s) => s.ingresses === 2);
  const two = second?.messagesPerSecond;
  const lines = [];
  if (one && two && second) {
    const u = second.cost.duringLoad;
    lines.push(`Two ingress processes moved ${int(two)} msg/s against one's ${int(one)}: ${(two / one).toFixed(2)} ×.`);
    if (two < 1.1 * one)
      lines.push(
        `The machine was ${(u.machineBusy / Math.max(0.001, u.seconds)).toFixed(2)} of ${u.cores} cores busy with two: a second process adds throughput only where cores are left idle.`,
      );
  }
  if (model) {
    const p = (cores: number) => model.predictions.find((x) => x.cores === cores);
    lines.push(
      `The cost model below predicts ${int(p(4)?.sameCores)} msg/s on 4 cores and ${int(p(8)?.sameCores)} on 8 with Kafka, Postgres and Redis on the same cores ` +
        `(${int(p(4)?.ownMachines)} and ${int(p(8)?.ownMachines)} with the stores on machines of their own), given as many ingress processes as the cores allow.`,
    );
  }
  out.push(lines.join(' '), '');
}

function renderCostModel(out: string[], model: CostModel, batch: HttpPhase | undefined): void {
  const c = model.msPerMessage;
  out.push('## Cost model', '');
  out.push(
    `CPU-ms per accepted message of each component in the batch phase (${batch ? `${batch.load.messagesPerRequest}/request` : ''}, from the start of the load until the read model caught up; ` +
      'the load generator and "others" left out):',
    '',
  );
  out.push(
    `| | ${MODEL_COLUMNS.join(' | ')} | roles | stores | all |`,
    `|---|${MODEL_COLUMNS.map(() => '--:').join('|')}|--:|--:|--:|`,
  );
  out.push(
    `| CPU-ms per message | ${MODEL_COLUMNS.map((n) => cpu(c[n])).join(' | ')} | ${cpu(model.rolesMs)} | ${cpu(model.storesMs)} | ${cpu(model.totalMs)} |`,
    '',
  );
  out.push(
    'Assumptions: every component scales out by processes (more ingress processes behind a load balancer) or partitions (the consumer roles, Kafka) without losing anything to it, ' +
      'so N cores, all busy, sustain N × 1,000 / (CPU-ms per message) messages/s; the cost per message stays what it was here (same batch size, message size, one broker with ' +
      'its replicas on this machine); nothing else runs on those cores. ' +
      `Signature checks dominate the ingress: one Ed25519 check (libsodium) cost ${cpu(model.signatureMs)} ms here, ${pct(model.signatureShareOfIngress)} of the ingress's ` +
      `${cpu(c['ingress'])} ms per message, so the ingress's line moves with the signature check's cost.`,
    '',
  );
  out.push(
    '| cores | roles and stores on the same cores | roles only; Kafka, Postgres, Redis on machines of their own (the cores they need there) |',
    '|--:|--:|--:|',
  );
  for (const p of model.predictions)
    out.push(
      `| ${p.cores} | ${int(p.sameCores)} msg/s | ${int(p.ownMachines)} msg/s (${p.storeCoresElsewhere.toFixed(1)}) |`,
    );
  out.push('');
  const two = model.predictions.find((p) => p.cores === COST_CORES[0]);
  out.push(
    `Against this run: the batch phase measured ${int(model.measuredRate)} msg/s on ${model.machineCores} cores, ` +
      `${two && Number.isFinite(two.sameCores) ? `${pct(model.measuredRate / two.sameCores)} of the ${int(two.sameCores)} msg/s the model gives 2 cores` : 'no 2-core prediction'}. ` +
      `The load generator and other work took ${(model.machineCores - model.coresLeft).toFixed(2)} of the cores during that load; on the ${model.coresLeft.toFixed(2)} cores left the model predicts ` +
      `${int(model.predictedOnCoresLeft)} msg/s (measured: ${pct(model.measuredRate / model.predictedOnCoresLeft)}).` +
      (batch && !batch.keptUp
        ? ` The batch phase's read model did not keep up: the CPU above runs until it caught up ${batch.projection.caughtUpAfterSeconds === undefined ? '(it did not)' : `${batch.projection.caughtUpAfterSeconds.toFixed(1)} s after the load`}, ` +
          "and over that longer window the stores also count whatever else used them, so the stores' CPU per message is likely too high."
        : ''),
    '',
  );
}
