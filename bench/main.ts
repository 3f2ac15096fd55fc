import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import sodium from 'sodium-native';
import { loadConfig } from '../src/config/config.js';
import { ensureTopics } from '../src/kafka/admin.js';
import { openResources, type Resources } from '../src/app/resources.js';
import { createLogger } from '../src/observability/logger.js';
import { rawConsumeSpeed, replaySpeed } from '../src/replay/speed.js';
import { costModel } from './cost-model.js';
import { summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { ingressView, scrape } from './ingress-metrics.js';
import { InspectorProfiler } from './inspector-profiler.js';
import { buildPool, joinPools, slicePool, splitPool, type MessagePool } from './message-pool.js';
import { parseOptions, USAGE, type BenchOptions } from './options.js';
import { PROJECT_ROOT } from '../src/config/paths.js';
import { cleanupRun } from './cleanup.js';
import { runEnv } from './run-env.js';
import { createPeers, type BenchPeer } from './peers.js';
import { runBaseline } from './phases/baseline.js';
import { runDelivery } from './phases/delivery.js';
import { runHttpLoad, type HttpLoadResult } from './phases/http-load.js';
import { runOpenAccept } from './phases/open-accept.js';
import { runReads } from './phases/reads.js';
import { pidListeningOn } from './proc-stats.js';
import { ProjectionProbe, type ProjectionLag } from './projection-probe.js';
import { ROLES, RelayProcesses } from './relay-processes.js';
import {
  renderMarkdown,
  type BenchReport,
  type DeliveryPhase,
  type HttpPhase,
  type Machine,
  type PhaseCost,
  type ScalingStep,
  type Target,
} from './report.js';
import { processTree, ProcessWatch, type Snapshot, type Watched } from './watched-processes.js';

const RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results');
const SENDERS = 500;
const RECIPIENTS = 1000;
/**
 * Signed messages prepared per second of a phase: three times the rate the warm-up reached (the
 * warm-up runs cold, so it under-states), at least MIN and at most MAX. A phase that uses up its
 * pool ends early and says its rate is a lower bound.
 */
const POOL_RATE = { single: { min: 2_500, max: 10_000 }, batch: { min: 5_000, max: 25_000 } } as const;
const POOL_HEADROOM = 3;
/** How long the read model may take, after the load stops, to count as keeping up; and how long we wait at most. */
const KEPT_UP_SECONDS = 10;
const SETTLE_WAIT_MS = 30_000;
/** The name of the ingress process the scaling phase adds. */
const SECOND_INGRESS = 'ingress 2';

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });

/** The relay's environment for this run (bench/run-env.ts), with the load's own settings. */
const benchEnv = (id: string, port: number, hotRecipient: string): Record<string, string> =>
  runEnv('bench', id, port, {
    // The load carries no API keys or tokens: the bench measures the message path, not the gate.
    RELAY_AUTH: 'off',
    // The hot-recipient phase sends everything to one address, as an operator would allow a bot.
    RELAY_RATE_RECIPIENT_OVERRIDES: `${hotRecipient}=1000000/1000000`,
  });

function machine(): Machine {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return '';
    }
  };
  const pom = readFileSync(join(PROJECT_ROOT, 'infra', 'kafka', 'pom.xml'), 'utf8');
  const commit = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain').length > 0;
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.versions.node,
    kafka: /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown',
    os: `${type()} ${release()}`,
    loadAverageAtStart: loadavg(),
    commit: commit ? `${commit}${dirty ? ' (with uncommitted changes)' : ''}` : 'unknown',
  };
}

const stamp = (d: Date) =>
  d
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace('T', '-')
    .replace(/:/g, '');

const portOf = (url: string, fallback: number) => {
  try {
    return Number(new URL(url).port) || fallback;
  } catch {
    return fallback;
  }
};

/** One MessageSent, encoded as the relay encodes it, from a signed single-message body. */
function encodeAsEvent(resources: Resources, body: Buffer, nodeId: string): Buffer {
  const m = JSON.parse(body.toString()) as Record<string, string>;
  return resources.codec.encode({
    type: 'MessageSent',
    data: {
      event_id: '00000000-0000-4000-8000-000000000000',
      occurred_at: Date.now(),
      message_id: m['message_id'] ?? '',
      from_address: m['from_address'] ?? '',
      to_address: m['to_address'] ?? '',
      message_type: m['message_type'] ?? '',
      encrypted_content: m['encrypted_content'] ?? '',
      content_sha256: 'x'.repeat(43),
      signature: m['signature'] ?? '',
      node_id: nodeId,
    },
  });
}

/**
 * CPU µs of one signature check, measured here and now: with node:crypto and a cached KeyObject,
 * and for Ed25519 also with libsodium, as the ingress checks it.
 */
function measureVerify(): { ed25519: number; ed25519Sodium: number; p256: number } {
  const data = Buffer.alloc(420, 'a');
  const time = (check: () => boolean) => {
    for (let i = 0; i < 200; i++) check();
    const n = 2000;
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) check();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  };
  // DER out of the generator and KeyObjects made from it (see peers.ts for why not the generator's own KeyObjects).
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'der' } as const;
  const keys = (alg: 'ed25519' | 'p256') => {
    const pair: { publicKey: Buffer; privateKey: Buffer } =
      alg === 'ed25519'
        ? generateKeyPairSync('ed25519', { publicKeyEncoding, privateKeyEncoding })
        : generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding, privateKeyEncoding });
    const privateKey = createPrivateKey({ key: pair.privateKey, format: 'der', type: 'pkcs8' });
    return {
      der: pair.publicKey,
      publicKey: createPublicKey({ key: pair.publicKey, format: 'der', type: 'spki' }),
      digest: alg === 'ed25519' ? null : 'sha256',
      privateKey,
    };
  };
  const withCrypto = (alg: 'ed25519' | 'p256') => {
    const k = keys(alg);
    const signature = sign(k.digest, data, { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
    return {
      k,
      signature,
      check: () => verify(k.digest, data, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, signature),
    };
  };
  const ed = withCrypto('ed25519');
  // The raw 32-byte key ends the SubjectPublicKeyInfo.
  const rawKey = ed.k.der.subarray(ed.k.der.length - 32);
  return {
    ed25519: time(ed.check),
    ed25519Sodium: time(() => sodium.crypto_sign_verify_detached(ed.signature, data, rawKey)),
    p256: time(withCrypto('p256').check),
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const opts = options;
  const startedAt = new Date();
  const id = randomBytes(4).toString('hex');
  const port = await freePort();
  const hot = createPeers(1)[0] as BenchPeer;
  const env = benchEnv(id, port, hot.address);
  const config = loadConfig(env);
  const resources = openResources(config, createLogger('warn', { bench: id }));
  const baseUrl = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}`;
  const profileDir = join(RESULTS_DIR, 'profiles');
  if (opts.profile) mkdirSync(profileDir, { recursive: true });
  const relay = new RelayProcesses(env, join(PROJECT_ROOT, '.relay', 'bench', id), { inspectIngress: opts.profile });
  let profiler: InspectorProfiler | undefined;
  const profiles: ProfileSummary[] = [];
  /** Runs `load` with the ingress's profiler on (with --profile), and keeps a summary of what it sampled. */
  const profiled = async <T>(phase: string, load: () => Promise<T>): Promise<T> => {
    if (!profiler) return load();
    await profiler.start();
    const result = await load();
    const profile = await profiler.stop();
    const file = join(profileDir, `${stamp(startedAt)}-${phase}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    profiles.push(summarizeProfile(profile, phase, file.slice(PROJECT_ROOT.length)));
    return result;
  };
  const probe = new ProjectionProbe(resources.pool);
  const notes: string[] = [];
  const m = machine();
  const d = opts.durationSeconds;
  let report: Omit<BenchReport, 'finishedAt' | 'targets' | 'notes' | 'profiles'> | undefined;
  let acceptedSoFar = 0;

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    say('interrupted: stopping the relay processes and cleaning up');
    relay.killNow();
    const finish = opts.keep
      ? Promise.resolve()
      : cleanupRun(resources, config, ['projector', 'presence', 'router']).catch(() => undefined);
    void finish.finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => relay.killNow());

  say(
    `run ${id}: topics bench.${id}.*, schema b_${id}, Redis bench:${id}:*, ingress on ${baseUrl}; relay logs in .relay/bench/${id}/`,
  );
  try {
    await relay.setup();
    await resources.codec.registerAll();
    await relay.start(baseUrl, resources.kafka, config.kafka.groupPrefix);
    say('relay ready: ingress, projector, presence, router');
    if (opts.profile) profiler = await InspectorProfiler.connect(await relay.inspectorUrl());

    const kafkaPid = pidListeningOn(portOf(`kafka://${config.kafka.brokers[0] ?? ''}`, 9092));
    const redisPid = pidListeningOn(portOf(config.redis.url, 6379));
    const postgresPid = pidListeningOn(portOf(config.postgres.url, 5432));
    if (kafkaPid === undefined)
      notes.push('The Kafka broker process was not found by its port: its CPU is counted under "others".');
    const watched: Watched[] = [
      ...[...ROLES, SECOND_INGRESS].map((name) => ({
        name,
        ours: true,
        pids: () => [relay.pid(name)].filter((p): p is number => p !== undefined),
      })),
      { name: 'kafka', ours: false, pids: () => (kafkaPid === undefined ? [] : [kafkaPid]) },
      { name: 'postgres', ours: false, pids: processTree(postgresPid) },
      { name: 'redis', ours: false, pids: () => (redisPid === undefined ? [] : [redisPid]) },
      { name: 'load generator', ours: false, pids: () => [process.pid] },
    ];
    const watch = new ProcessWatch(watched, m.cores);

    const senders: BenchPeer[] = createPeers(SENDERS);
    const recipients = createPeers(RECIPIENTS).map((p) => p.address);
    const sample = await buildPool({
      senders,
      recipients,
      bodies: 16,
      perBody: 1,
      wrap: 'single',
      contentBytes: opts.contentBytes,
    });
    const events = sample.bodies.map((body) => encodeAsEvent(resources, body, config.nodeId));
    const eventBytes = events[0]?.length ?? 0;
    const singleBodyBytes = sample.bodies[0]?.length ?? 0;
    probe.start();
    const verifyMicros = measureVerify();
    say(
      `one signature check costs ${verifyMicros.ed25519Sodium.toFixed(0)} µs (Ed25519, libsodium), ${verifyMicros.ed25519.toFixed(0)} µs (Ed25519, node:crypto) and ${verifyMicros.p256.toFixed(0)} µs (P-256) of CPU here now`,
    );

    report = {
      startedAt: startedAt.toISOString(),
      runId: id,
      machine: m,
      options: { ...opts },
      setup: {
        partitions: config.kafka.partitions,
        replicationFactor: config.kafka.replicationFactor,
        contentBytes: opts.contentBytes,
        eventBytes,
        singleBodyBytes,
        senders: SENDERS,
        recipients: RECIPIENTS,
        verifyMicros,
        relayEnv: Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('RELAY_'))),
      },
    };

    // 1. The ceiling: raw kafkajs produce.
    let baselineRate: number | undefined;
    if (opts.phases.includes('baseline')) {
      const topic = `${config.kafka.topicPrefix}bench.baseline`;
      await ensureTopics(resources.kafka, [
        { topic, numPartitions: config.kafka.partitions, replicationFactor: config.kafka.replicationFactor },
      ]);
      say(`baseline: raw kafkajs produce of ${eventBytes}-byte records for ${d} s`);
      const before = watch.begin();
      const result = await runBaseline({
        kafka: resources.kafka,
        topic,
        keys: recipients,
        values: events,
        durationSeconds: d,
      });
      const usage = watch.usage(before);
      baselineRate = result.recordsPerSecond;
      report = { ...report, baseline: { result, usage } };
      say(`baseline: ${Math.round(result.recordsPerSecond)} records/s`);
    }

    const settle = async (phase: string, loadStart: number, loadEnd: number) =>
      probe.settle(phase, loadStart, loadEnd, acceptedSoFar, SETTLE_WAIT_MS);
    const keptUp = (p: ProjectionLag) =>
      p.caughtUpAfterSeconds !== undefined &&
      p.caughtUpAfterSeconds <= KEPT_UP_SECONDS &&
      !(p.lastThirdP50 > 2 * p.firstThirdP50 + 500);
    const cost = (before: Snapshot, atLoadEnd: Snapshot, accepted: number): PhaseCost => {
      const untilSettled = watch.usage(before);
      const cpuPer1000: Record<string, number> = {};
      for (const [name, u] of Object.entries(untilSettled.processes))
        cpuPer1000[name] = (u.cpuSeconds / Math.max(1, accepted)) * 1000;
      return { duringLoad: watch.usage(before, atLoadEnd), untilSettled, cpuPer1000 };
    };
    const pool = (
      bodies: number,
      perBody: number,
      wrap: 'single' | 'batch',
      to: readonly string[] = recipients,
    ): Promise<MessagePool> =>
      buildPool({ senders, recipients: to, bodies, perBody, wrap, contentBytes: opts.contentBytes });

    // Warm-up, not measured: the ingress's code paths get compiled before the first phase.
    const warmRate: Record<'single' | 'batch', number> = { single: POOL_RATE.single.max, batch: POOL_RATE.batch.max };
    if (opts.phases.some((p) => p !== 'baseline')) {
      say('warm-up: 2 s of single and 2 s of batch requests (not measured; sizes the signed pools)');
      const warmSingle = await runHttpLoad({
        baseUrl,
        path: '/api/v1/message/relay',
        pool: await pool(POOL_RATE.single.max, 1, 'single'),
        connections: Math.min(16, opts.connections),
        durationSeconds: 2,
        phase: 'warm-up',
      });
      const warmBatch = await runHttpLoad({
        baseUrl,
        path: '/api/v1/message/relay/batch',
        pool: await pool(Math.ceil(POOL_RATE.batch.max / opts.batchSize), opts.batchSize, 'batch'),
        connections: opts.batchConnections,
        durationSeconds: 2,
        phase: 'warm-up',
      });
      warmRate.single = warmSingle.poolExhausted ? POOL_RATE.single.max : warmSingle.messagesPerSecond;
      warmRate.batch = warmBatch.poolExhausted ? POOL_RATE.batch.max : warmBatch.messagesPerSecond;
      acceptedSoFar += warmSingle.acceptedMessages + warmBatch.acceptedMessages;
      await probe.settle('warm-up', 0, performance.now(), acceptedSoFar, SETTLE_WAIT_MS);
    }

    /**
     * Runs one measured load: the ingress's /metrics before and after, CPU from the start of the
     * load until the read model caught up with the `accepted` messages, the projection lag of the
     * messages it tracked. `window` gives the load's start and end (performance.now()) when they
     * are not the call's own.
     */
    const measure = async <T>(
      phase: string,
      route: string,
      load: () => Promise<T>,
      accepted: (result: T) => number,
      window: (result: T, called: number, returned: number) => [number, number] = (_, called, returned) => [
        called,
        Math.min(returned, called + d * 1000),
      ],
    ) => {
      const scraped = await scrape(baseUrl);
      const before = watch.begin();
      const called = performance.now();
      const result = await profiled(phase, load);
      const returned = performance.now();
      const atLoadEnd = watch.snapshot();
      const ingress = ingressView(scraped, await scrape(baseUrl), route);
      acceptedSoFar += accepted(result);
      const projection = await settle(phase, ...window(result, called, returned));
      const measured = {
        ingress,
        projection,
        keptUp: keptUp(projection),
        cost: cost(before, atLoadEnd, accepted(result)),
      };
      return { result, measured };
    };
    const caughtUp = (p: ProjectionLag) =>
      p.caughtUpAfterSeconds === undefined
        ? 'did not catch up'
        : `caught up after ${p.caughtUpAfterSeconds.toFixed(1)} s`;
    const ratio = (rate: number) => (baselineRate ? rate / baselineRate : undefined);
    /** Signed messages for `d` s of closed-loop load: POOL_HEADROOM times the warm-up's rate, within POOL_RATE. */
    const closedLoopMessages = (kind: 'single' | 'batch') =>
      Math.round(Math.min(POOL_RATE[kind].max, Math.max(POOL_RATE[kind].min, POOL_HEADROOM * warmRate[kind])) * d);

    /** Signed batch bodies to the spread-out recipients that a closed-loop load did not send: the next one sends them first, and signs only what is missing. */
    let spareBatch: MessagePool | undefined;
    const batchPool = async (messages: number): Promise<MessagePool> => {
      const wanted = Math.ceil(messages / opts.batchSize);
      // Signed earlier: no signing time of this pool's.
      const spare = spareBatch ? { ...slicePool(spareBatch, 0, wanted), buildSeconds: 0 } : undefined;
      spareBatch = spareBatch ? slicePool(spareBatch, wanted) : undefined;
      const missing = wanted - (spare?.bodies.length ?? 0);
      const fresh = missing > 0 ? await pool(missing, opts.batchSize, 'batch') : undefined;
      return joinPools(
        [spare, fresh].filter((p): p is MessagePool => p !== undefined),
        opts.batchSize,
      );
    };
    const keepUnsent = (pools: readonly MessagePool[], loads: readonly HttpLoadResult[]) => {
      spareBatch = joinPools(
        [
          ...(spareBatch ? [spareBatch] : []),
          ...pools.map((p, i) => slicePool(p, loads[i]?.bodiesUsed ?? p.bodies.length)),
        ],
        opts.batchSize,
      );
    };

    const httpPhase = async (phase: 'single' | 'batch' | 'hot'): Promise<HttpPhase> => {
      const batch = phase !== 'single';
      const perBody = batch ? opts.batchSize : 1;
      const messages = closedLoopMessages(batch ? 'batch' : 'single');
      const p =
        phase === 'batch'
          ? await batchPool(messages)
          : await pool(
              Math.ceil(messages / perBody),
              perBody,
              batch ? 'batch' : 'single',
              phase === 'hot' ? [hot.address] : recipients,
            );
      say(`${phase}: signed ${p.ids.length} messages in ${p.buildSeconds.toFixed(1)} s; ${d} s of load`);
      const route = batch ? '/api/v1/message/relay/batch' : '/api/v1/message/relay';
      const { result: load, measured } = await measure(
        phase,
        route,
        () =>
          runHttpLoad({
            baseUrl,
            path: route,
            pool: p,
            connections: batch ? opts.batchConnections : opts.connections,
            durationSeconds: d,
            phase,
            probe,
            sampleEvery: batch ? 1 : 20,
          }),
        (l) => l.acceptedMessages,
      );
      if (phase === 'batch') keepUnsent([p], [load]);
      say(
        `${phase}: ${Math.round(load.messagesPerSecond)} msg/s, p99 ${load.latency.p99.toFixed(1)} ms; read model ${caughtUp(measured.projection)}`,
      );
      return { load, ...measured, ratioToBaseline: ratio(load.messagesPerSecond) };
    };

    if (opts.phases.includes('single')) report = { ...report, single: await httpPhase('single') };
    if (opts.phases.includes('batch')) report = { ...report, batch: await httpPhase('batch') };
    if (opts.phases.includes('hot')) report = { ...report, hot: await httpPhase('hot') };
    if (opts.phases.includes('reads')) {
      const pairs = opts.quick ? 200 : 1000;
      const p = await pool(
        pairs,
        1,
        'single',
        createPeers(pairs).map((peer) => peer.address),
      );
      say(`reads: ${pairs} sends, each read back at once with its consistency token`);
      const reads = await runReads({ baseUrl, pool: p });
      acceptedSoFar += pairs;
      report = { ...report, reads };
      say(
        `reads: right after the 202 p50 ${reads.firstRead.p50.toFixed(1)} / p99 ${reads.firstRead.p99.toFixed(1)} ms; again p50 ${reads.secondRead.p50.toFixed(1)} / p99 ${reads.secondRead.p99.toFixed(1)} ms; ${reads.stale} stale, ${reads.missing} missing`,
      );
    }

    if (opts.phases.includes('delivery')) {
      const batchRate = report.batch?.load.messagesPerSecond;
      const rate = Math.max(10, Math.round(opts.deliveryRate ?? (batchRate ? batchRate / 2 : 2000)));
      if (opts.deliveryRate === undefined && !batchRate)
        notes.push('The delivery rate defaulted to 2,000 msg/s: the batch phase did not run.');
      // One request every 20 ms or so, so that the rate is smooth rather than bursty.
      const perBody = Math.min(opts.batchSize, Math.max(1, Math.round(rate / 50)));
      const to = createPeers(opts.recipients).map((peer) => peer.address);
      const p = await pool(Math.ceil((rate * d) / perBody) + 1, perBody, 'batch', to);
      say(
        `delivery: ${opts.recipients} WebSocket recipients, ${rate} msg/s in requests of ${perBody} for ${d} s (signed in ${p.buildSeconds.toFixed(1)} s)`,
      );
      const { result: delivery, measured } = await measure(
        'delivery',
        '/api/v1/message/relay/batch',
        () =>
          runDelivery({ baseUrl, wsUrl, recipients: to, pool: p, rate, durationSeconds: d, phase: 'delivery', probe }),
        (r) => r.acceptedMessages,
        // The socket set-up (2 s) precedes the load inside runDelivery.
        (r, called) => [called + 2000, called + 2000 + r.seconds * 1000],
      );
      const phase: DeliveryPhase = { delivery, ...measured, ratioToBaseline: ratio(delivery.messagesPerSecond) };
      report = { ...report, delivery: phase };
      say(
        `delivery: p99 ${delivery.deliveryLatency.p99.toFixed(1)} ms send→socket; ${delivery.delivered} delivered, ${delivery.missing} missing`,
      );
    }

    if (opts.phases.includes('open')) {
      const rate = opts.openRate;
      const p = await pool(Math.ceil((rate * d) / opts.openBatch) + 1, opts.openBatch, 'batch');
      say(
        `open: ${rate} msg/s in requests of ${opts.openBatch} for ${d} s, open loop (signed in ${p.buildSeconds.toFixed(1)} s)`,
      );
      const { result: open, measured } = await measure(
        'open',
        '/api/v1/message/relay/batch',
        () => runOpenAccept({ baseUrl, pool: p, rate, durationSeconds: d, phase: 'open', probe }),
        (r) => r.acceptedMessages,
        // The load lasts until the last answer, which may come well after the last send.
        (r, called) => [called, called + r.answeredSeconds * 1000],
      );
      report = { ...report, open: { open, ...measured, ratioToBaseline: ratio(open.messagesPerSecond) } };
      say(
        `open: ${Math.round(open.messagesPerSecond)} msg/s accepted, p99 ${open.latency.p99.toFixed(1)} ms from the scheduled send; ${open.lateSends} late sends`,
      );
    }

    // The same closed-loop batch load against one ingress, then split between two.
    if (opts.phases.includes('scaling')) {
      const route = '/api/v1/message/relay/batch';
      const secondUrl = await relay.addIngress(SECOND_INGRESS, await freePort());
      say(`scaling: ${SECOND_INGRESS} ready on ${secondUrl}; 2 s of batch requests to it (not measured)`);
      const warmPool = await batchPool(POOL_HEADROOM * 2 * warmRate.batch);
      const warm = await runHttpLoad({
        baseUrl: secondUrl,
        path: route,
        pool: warmPool,
        connections: opts.batchConnections,
        durationSeconds: 2,
        phase: 'warm-up',
      });
      keepUnsent([warmPool], [warm]);
      acceptedSoFar += warm.acceptedMessages;
      await probe.settle('warm-up', 0, performance.now(), acceptedSoFar, SETTLE_WAIT_MS);
      const steps: ScalingStep[] = [];
      for (const urls of [[baseUrl], [baseUrl, secondUrl]]) {
        const phase = `scaling-${urls.length}`;
        const whole = await batchPool(closedLoopMessages('batch'));
        const parts = splitPool(whole, urls.length);
        // The connections dealt out between the ingresses; each gets at least one.
        const connections = urls.map((_, i) =>
          Math.max(
            1,
            Math.floor(opts.batchConnections / urls.length) + (i < opts.batchConnections % urls.length ? 1 : 0),
          ),
        );
        say(
          `${phase}: ${urls.length} ingress process${urls.length > 1 ? 'es' : ''}, ${connections.join(' + ')} connections, ${d} s; ${whole.ids.length} signed messages (${whole.buildSeconds.toFixed(1)} s of it signing)`,
        );
        const { result: loads, measured } = await measure(
          phase,
          route,
          () =>
            Promise.all(
              urls.map((url, i) =>
                runHttpLoad({
                  baseUrl: url,
                  path: route,
                  pool: parts[i] as MessagePool,
                  connections: connections[i] ?? 1,
                  durationSeconds: d,
                  phase,
                  probe,
                }),
              ),
            ),
          (ls) => ls.reduce((sum, l) => sum + l.acceptedMessages, 0),
        );
        keepUnsent(parts, loads);
        const rate = loads.reduce((sum, l) => sum + l.messagesPerSecond, 0);
        steps.push({
          ingresses: urls.length,
          loads,
          messagesPerSecond: rate,
          projection: measured.projection,
          keptUp: measured.keptUp,
          cost: measured.cost,
        });
        say(`${phase}: ${Math.round(rate)} msg/s; read model ${caughtUp(measured.projection)}`);
      }
      await relay.stop(undefined, [SECOND_INGRESS]);
      report = { ...report, scaling: { steps } };
    }

    // Analysts' replay of everything the phases wrote, beside a raw kafkajs read of the same topic.
    if (opts.phases.includes('replay')) {
      const raw = await rawConsumeSpeed(resources, resources.topics.mailbox);
      const decoded = await replaySpeed(resources, resources.topics.mailbox);
      report = { ...report, replay: { raw, decoded } };
      say(
        `replay: ${Math.round(decoded.events / decoded.seconds)} events/s to JSON Lines; raw kafkajs consume ${Math.round(raw.events / raw.seconds)} records/s`,
      );
    }
  } finally {
    probe.stop();
    profiler?.close();
    for (const stopped of await relay.stop()) {
      if (stopped.killed) notes.push(`\`relay ${stopped.role}\` did not exit within 10 s of SIGTERM and was killed.`);
    }
    if (!opts.keep && !interrupted) {
      say('cleaning up: topics, consumer groups, schema, Redis keys');
      await cleanupRun(resources, config, ['projector', 'presence', 'router']).catch((error: unknown) =>
        say(`clean-up failed: ${(error as Error).message}`),
      );
    }
    await resources.close();
  }
  if (!report) return 1;

  const batchUsage = report.batch?.cost.duringLoad;
  if (report.batch && batchUsage) {
    const taken =
      ((batchUsage.processes['load generator']?.cpuSeconds ?? 0) + batchUsage.otherBusy) /
      Math.max(0.001, batchUsage.seconds);
    report = {
      ...report,
      costModel: costModel({
        cpuPer1000: report.batch.cost.cpuPer1000,
        measuredRate: report.batch.load.messagesPerSecond,
        machineCores: m.cores,
        coresTaken: taken,
        signatureMicros: report.setup.verifyMicros.ed25519Sodium,
      }),
    };
  }
  const full: BenchReport = {
    ...report,
    finishedAt: new Date().toISOString(),
    profiles,
    targets: targets(report),
    notes: [...notes, ...standardNotes(report, opts)],
  };
  const processNames = ['ingress', 'projector', 'presence', 'router', 'kafka', 'postgres', 'redis', 'load generator'];
  const markdown = renderMarkdown(full, processNames, [...ROLES]);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const base = join(RESULTS_DIR, stamp(startedAt));
  writeFileSync(`${base}.json`, `${JSON.stringify(full, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(join(RESULTS_DIR, 'latest.md'), markdown);
  process.stdout.write(`${markdown}\n`);
  say(`report: ${base}.md, ${base}.json and bench/results/latest.md`);
  return 0;
}

/** The targets, from the cost-per-message requirements (bench/README.md says which is which). */
function targets(r: Omit<BenchReport, 'finishedAt' | 'targets' | 'notes' | 'profiles'>): Target[] {
  const rate = (l: HttpLoadResult) =>
    `${Math.round(l.messagesPerSecond).toLocaleString('en-US')} msg/s, p99 ${l.latency.p99.toFixed(1)} ms`;
  const peaks = [r.single, r.batch, r.delivery, r.open]
    .map((p) => p?.cost.untilSettled.processes['ingress']?.peakRssBytes)
    .filter((v): v is number => v !== undefined);
  const peak = peaks.length > 0 ? Math.max(...peaks) : undefined;
  const model = r.costModel;
  const ratio = r.batch?.ratioToBaseline;
  return [
    {
      // Closed loop: its latency is its own queueing (in flight / rate), judged by the open-loop row.
      name: 'batch path ≥ 9,000 msg/s, projected in full',
      measured: r.batch
        ? `${rate(r.batch.load)}${r.batch.keptUp ? '' : '; the read model did not keep up'}`
        : 'not run',
      met: r.batch ? r.batch.load.messagesPerSecond >= 9_000 && r.batch.keptUp : undefined,
    },
    {
      name: 'single path ≥ 2,500 msg/s, projected in full',
      measured: r.single
        ? `${rate(r.single.load)}${r.single.keptUp ? '' : '; the read model did not keep up'}`
        : 'not run',
      met: r.single ? r.single.load.messagesPerSecond >= 2_500 && r.single.keptUp : undefined,
    },
    openTarget(r),
    deliveryTarget(r),
    {
      name: 'CPU per batched message, all relay processes together (roles, Kafka, Postgres, Redis; not the load generator or "others") ≤ 0.24 ms',
      measured: model
        ? `${model.totalMs.toFixed(3)} ms (roles ${model.rolesMs.toFixed(3)}, stores ${model.storesMs.toFixed(3)})`
        : 'no batch phase',
      met: model ? model.totalMs <= 0.24 : undefined,
    },
    {
      name: 'batch path / raw kafkajs ≥ 0.3',
      measured: ratio === undefined ? (r.batch ? 'no baseline phase' : 'not run') : ratio.toFixed(2),
      met: ratio === undefined ? undefined : ratio >= 0.3,
    },
    {
      name: 'ingress peak RSS < 512 MB',
      measured: peak === undefined ? 'not measured' : `${Math.round(peak / 1024 / 1024)} MB`,
      met: peak === undefined ? undefined : peak < 512 * 1024 * 1024,
    },
  ];
}

/**
 * Judged only at the target's own load (3,000 msg/s in batches of 50): met when p99 from the
 * scheduled send is under 100 ms, every message was accepted and the generator kept the rate.
 */
function openTarget(r: Omit<BenchReport, 'finishedAt' | 'targets' | 'notes' | 'profiles'>): Target {
  const name = 'accept p99 < 100 ms at 3,000 msg/s in batches of 50 (open loop, from the scheduled send)';
  if (!r.open) return { name, measured: 'not run', met: undefined };
  const o = r.open.open;
  const refused = Object.values(o.refused).reduce((sum, n) => sum + n, 0);
  const measured = `p99 ${o.latency.p99.toFixed(1)} ms, ${Math.round(o.messagesPerSecond).toLocaleString('en-US')} msg/s accepted, ${refused} refused or failed, ${o.lateSends} late sends`;
  if (o.targetRate !== 3000 || o.messagesPerRequest !== 50) {
    return {
      name,
      measured: `${measured} (not judged: run at ${o.targetRate} msg/s in batches of ${o.messagesPerRequest})`,
      met: undefined,
    };
  }
  return { name, measured, met: o.latency.p99 < 100 && refused === 0 && o.messagesPerSecond >= 0.95 * o.targetRate };
}

/** Judged only when the delivery rate is (about) half a batch rate measured in the same run. */
function deliveryTarget(r: Omit<BenchReport, 'finishedAt' | 'targets' | 'notes' | 'profiles'>): Target {
  const name = 'delivery p99 < 100 ms at half the sustained batch rate';
  if (!r.delivery) return { name, measured: 'not run', met: undefined };
  const { deliveryLatency, targetRate, missing } = r.delivery.delivery;
  const measured = `p99 ${deliveryLatency.p99.toFixed(1)} ms at ${Math.round(targetRate).toLocaleString('en-US')} msg/s, ${missing} missing`;
  const half = r.batch ? r.batch.load.messagesPerSecond / 2 : undefined;
  if (half === undefined || targetRate < 0.95 * half) {
    const why =
      half === undefined
        ? 'no batch phase in this run'
        : `half of this run's batch rate is ${Math.round(half).toLocaleString('en-US')} msg/s`;
    return { name, measured: `${measured} (not judged: ${why})`, met: undefined };
  }
  return { name, measured, met: deliveryLatency.p99 < 100 && missing === 0 };
}

function standardNotes(
  r: Omit<BenchReport, 'finishedAt' | 'targets' | 'notes' | 'profiles'>,
  opts: BenchOptions,
): string[] {
  const notes = [
    'Single and batch phases are closed-loop (each connection sends its next request when the answer arrives), so their latency includes the queueing their own concurrency causes: ' +
      `${opts.connections} single messages, or ${opts.batchConnections} × ${opts.batchSize} batch messages, in flight. The delivery and open-loop phases send at a fixed rate whatever the answers do.`,
    'Every relay role runs in its own process (`node dist/cli/main.js <role>`), with RELAY_AUTH=off: no API key or token checks on the load; the load generator runs on the same 2 cores.',
    'A target is "met" only by the numbers of this run; the machine also runs the broker, the registry, PostgreSQL and Redis, and whatever else was busy then ("others").',
  ];
  for (const [name, usage] of [
    ['raw Kafka', r.baseline?.usage],
    ['single', r.single?.cost.duringLoad],
    ['batch', r.batch?.cost.duringLoad],
    ['delivery', r.delivery?.cost.duringLoad],
    ['open-loop', r.open?.cost.duringLoad],
    ...(r.scaling?.steps.map((step) => [`scaling (${step.ingresses} ingress)`, step.cost.duringLoad] as const) ?? []),
  ] as const) {
    if (usage && usage.otherBusy / usage.seconds > 0.25) {
      notes.push(
        `During the ${name} phase other work took ${(usage.otherBusy / usage.seconds).toFixed(2)} of the ${usage.cores} cores on average: the relay had less than this machine to itself, and its rates here are lower than on a quiet machine.`,
      );
    }
  }
  if (r.open && r.open.open.lateSends > 0) {
    notes.push(
      `The load generator sent ${r.open.open.lateSends} open-loop requests more than one interval late (it fell behind its own schedule): their latency counts from the scheduled time, so it includes the generator's delay.`,
    );
  }
  if (opts.profile)
    notes.push('This run profiled the ingress (V8 sampling profiler at 0.5 ms), which costs it some throughput.');
  for (const [name, phase] of [
    ['single', r.single],
    ['batch', r.batch],
  ] as const) {
    if (phase?.load.poolExhausted)
      notes.push(
        `The ${name} phase used up its ${phase.load.requests} pre-signed requests before the time was up: its rate is a lower bound.`,
      );
  }
  return notes;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
