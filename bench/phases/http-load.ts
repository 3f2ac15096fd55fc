import autocannon from 'autocannon';
import type { MessagePool } from '../message-pool.js';
import type { ProjectionProbe } from '../projection-probe.js';
import { PerSecond, Samples, type Distribution } from '../samples.js';

export interface HttpLoadResult {
  readonly path: string;
  readonly connections: number;
  readonly messagesPerRequest: number;
  /** The measured window, s: the configured duration, or less if the signed pool ran out. */
  readonly seconds: number;
  readonly poolExhausted: boolean;
  /** Bodies of the pool that were sent (their ids are used); the rest may serve another load. */
  readonly bodiesUsed: number;
  readonly requests: number;
  readonly acceptedMessages: number;
  readonly messagesPerSecond: number;
  /** Per request (a batch's messages are answered together, so per message it is the same). */
  readonly latency: Distribution;
  readonly perSecond: { min: number; median: number; max: number } | undefined;
  /** Answers other than 202 (single) or per-message results other than accepted (batch), by status or code. */
  readonly refused: Readonly<Record<string, number>>;
  /** Connection errors and timeouts autocannon saw. */
  readonly errors: number;
  readonly timeouts: number;
}

interface RequestContext {
  index?: number;
  sentAt?: number;
}

const ACCEPTED = /"status":"accepted"/g;
const CODE = /"code":"([a-z_]+)"/g;

/**
 * Closed-loop load on one endpoint with autocannon: `connections` keep-alive connections, each
 * sending the next pre-signed body as soon as the previous answer arrives, for `durationSeconds`
 * (or until the pool runs out). Only answers that complete inside the window count.
 */
export async function runHttpLoad(options: {
  baseUrl: string;
  path: string;
  pool: MessagePool;
  connections: number;
  durationSeconds: number;
  phase: string;
  probe?: ProjectionProbe;
  /** Track one message id in `sampleEvery` requests for projection lag. */
  sampleEvery?: number;
}): Promise<HttpLoadResult> {
  const { pool, probe } = options;
  const batch = options.path.endsWith('/batch');
  const sampleEvery = options.sampleEvery ?? 1;
  const latency = new Samples();
  const refused: Record<string, number> = {};
  let next = 0;
  let requests = 0;
  let accepted = 0;
  let exhaustedAt: number | undefined;
  // autocannon connects and starts its clock as soon as it is called.
  const started = performance.now();
  const windowEnd = started + options.durationSeconds * 1000;
  const perSecond = new PerSecond(started);
  let instance: autocannon.Instance | undefined;

  const refuse = (key: string, n = 1) => (refused[key] = (refused[key] ?? 0) + n);

  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: options.baseUrl,
        connections: options.connections,
        pipelining: 1,
        duration: options.durationSeconds,
        timeout: 30,
        requests: [
          {
            method: 'POST',
            path: options.path,
            headers: { 'content-type': 'application/json' },
            setupRequest: (request, context) => {
              const ctx = context as RequestContext;
              const index = next++;
              if (index >= pool.bodies.length && exhaustedAt === undefined) {
                exhaustedAt = performance.now();
                setImmediate(() => instance?.stop());
              }
              // Past the end, repeat a body: its answer is not counted (the id was used already).
              ctx.index = index < pool.bodies.length ? index : undefined;
              ctx.sentAt = performance.now();
              return { ...request, body: pool.bodies[index % pool.bodies.length] };
            },
            onResponse: (status, body, context) => {
              const now = performance.now();
              const ctx = context as RequestContext;
              if (
                ctx.index === undefined ||
                ctx.sentAt === undefined ||
                now > windowEnd ||
                (exhaustedAt !== undefined && now > exhaustedAt)
              )
                return;
              requests++;
              latency.add(now - ctx.sentAt);
              let ok = 0;
              if (!batch) {
                if (status === 202) ok = 1;
                else refuse(`${status} ${(CODE.exec(body) ?? [])[1] ?? ''}`.trim());
                CODE.lastIndex = 0;
              } else if (status === 200) {
                ok = body.match(ACCEPTED)?.length ?? 0;
                if (ok < pool.perBody) for (const m of body.matchAll(CODE)) refuse(`item ${m[1]}`);
              } else {
                refuse(`${status}`, pool.perBody);
              }
              accepted += ok;
              perSecond.add(now, ok);
              if (probe && ok === pool.perBody && ctx.index % sampleEvery === 0) {
                probe.track(pool.ids[ctx.index * pool.perBody] as string, options.phase, now);
              }
            },
          },
        ],
      },
      (error: Error | null, res: autocannon.Result) => (error ? reject(error) : resolve(res)),
    );
    instance.on('reqError', () => undefined);
  });

  const end = Math.min(windowEnd, exhaustedAt ?? Infinity);
  const seconds = Math.max(0.001, (end - started) / 1000);
  return {
    path: options.path,
    connections: options.connections,
    messagesPerRequest: pool.perBody,
    seconds,
    poolExhausted: exhaustedAt !== undefined && exhaustedAt < windowEnd,
    bodiesUsed: Math.min(next, pool.bodies.length),
    requests,
    acceptedMessages: accepted,
    messagesPerSecond: accepted / seconds,
    latency: latency.summary(),
    perSecond: perSecond.spread(seconds),
    refused,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
