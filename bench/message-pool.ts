import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BenchPeer } from './peers.js';

/** Request bodies signed before the clock starts: every message id unique (the relay is idempotent by id). */
export interface MessagePool {
  readonly bodies: readonly Buffer[];
  /** Message ids in body order: body i holds ids[i * perBody .. (i + 1) * perBody). */
  readonly ids: readonly string[];
  readonly perBody: number;
  /** Wall seconds spent signing. */
  readonly buildSeconds: number;
}

export interface SignJob {
  readonly senders: readonly BenchPeer[];
  readonly recipients: readonly string[];
  readonly bodies: number;
  readonly perBody: number;
  readonly wrap: 'single' | 'batch';
  readonly contentBytes: number;
  /** Index of the job's first message overall, so that workers spread senders and recipients alike. */
  readonly firstMessage: number;
}

export interface SignResult {
  readonly bodies: Uint8Array[];
  readonly ids: string[];
}

const runJob = (job: SignJob): Promise<SignResult> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sign-worker.js', import.meta.url), { workerData: job });
    worker.once('message', (result: SignResult) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`signing worker exited with ${code}`));
    });
  });

/** Signs `bodies` request bodies of `perBody` messages each, on one worker thread per core. */
export async function buildPool(spec: Omit<SignJob, 'firstMessage'>): Promise<MessagePool> {
  const started = performance.now();
  const workers = Math.max(1, Math.min(availableParallelism(), spec.bodies));
  const share = Math.ceil(spec.bodies / workers);
  const jobs: SignJob[] = [];
  for (let first = 0; first < spec.bodies; first += share) {
    jobs.push({ ...spec, bodies: Math.min(share, spec.bodies - first), firstMessage: first * spec.perBody });
  }
  const results = await Promise.all(jobs.map(runJob));
  return {
    bodies: results.flatMap((r) => r.bodies.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))),
    ids: results.flatMap((r) => r.ids),
    perBody: spec.perBody,
    buildSeconds: (performance.now() - started) / 1000,
  };
}

/** Bodies `start` to `end` (not included) of a pool, as a pool of their own. */
export function slicePool(pool: MessagePool, start: number, end = pool.bodies.length): MessagePool {
  return {
    bodies: pool.bodies.slice(start, end),
    ids: pool.ids.slice(start * pool.perBody, Math.min(end, pool.bodies.length) * pool.perBody),
    perBody: pool.perBody,
    buildSeconds: pool.buildSeconds,
  };
}

/** Pools of the same messages per body, one after the other. */
export function joinPools(pools: readonly MessagePool[], perBody: number): MessagePool {
  return {
    bodies: pools.flatMap((p) => p.bodies),
    ids: pools.flatMap((p) => p.ids),
    perBody,
    buildSeconds: pools.reduce((sum, p) => sum + p.buildSeconds, 0),
  };
}

/** The pool's bodies dealt out, in order, into `parts` pools of about equal size. */
export function splitPool(pool: MessagePool, parts: number): MessagePool[] {
  const share = Math.ceil(pool.bodies.length / parts);
  return Array.from({ length: parts }, (_, i) => slicePool(pool, i * share, (i + 1) * share));
}
