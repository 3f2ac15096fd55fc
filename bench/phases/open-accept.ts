import type { MessagePool } from '../message-pool.js';
import type { ProjectionProbe } from '../projection-probe.js';
import { Samples, type Distribution } from '../samples.js';
import { BatchPoster, runSchedule } from './open-loop.js';

export interface OpenAcceptResult {
  /** Messages/s offered, and messages per request. */
  readonly targetRate: number;
  readonly messagesPerRequest: number;
  /** The schedule's span (requests × interval), or longer if the sends fell behind it, s. */
  readonly seconds: number;
  /** From the first scheduled send to the last answer, s. */
  readonly answeredSeconds: number;
  readonly requests: number;
  readonly sent: number;
  readonly acceptedMessages: number;
  /** Messages sent per second of the schedule. */
  readonly offeredPerSecond: number;
  /** Accepted messages per second, from the first scheduled send to the last answer. */
  readonly messagesPerSecond: number;
  /** Per request, from its scheduled send time to its answer, ms: time spent queued behind a slow answer counts. */
  readonly latency: Distribution;
  /** Per request, from its actual send to its answer, ms: what a closed-loop client would report. */
  readonly latencyFromSend: Distribution;
  /** Requests sent more than one interval late because the load generator fell behind, and the worst lag. */
  readonly lateSends: number;
  readonly maxSendLagMs: number;
  readonly refused: Readonly<Record<string, number>>;
}

/**
 * Open-loop accept latency: pre-signed batches sent to the batch endpoint at a fixed rate (request
 * k at t0 + k * interval, whatever the answers do), each request's latency measured from its
 * scheduled send time, so that waiting behind a slow answer is not hidden (coordinated omission).
 */
export async function runOpenAccept(options: {
  baseUrl: string;
  pool: MessagePool;
  rate: number;
  durationSeconds: number;
  phase: string;
  probe?: ProjectionProbe;
}): Promise<OpenAcceptResult> {
  const { pool, probe } = options;
  const latency = new Samples();
  const latencyFromSend = new Samples();
  // Enough sockets that the agent's own queue does not cap the offered load.
  const poster = new BatchPoster(options.baseUrl, pool, 256);
  const intervalMs = (1000 * pool.perBody) / options.rate;
  const requests = Math.min(pool.bodies.length, Math.floor((options.durationSeconds * 1000) / intervalMs));
  const schedule = await runSchedule(requests, intervalMs, async (index, due) => {
    const sentAt = performance.now();
    const answer = await poster.post(index);
    latency.add(answer.at - due);
    latencyFromSend.add(answer.at - sentAt);
    const first = poster.ids(index)[0];
    if (probe && answer.accepted === pool.perBody && first) probe.track(first, options.phase, answer.at);
  });
  poster.close();
  return {
    targetRate: options.rate,
    messagesPerRequest: pool.perBody,
    seconds: schedule.seconds,
    answeredSeconds: schedule.answeredSeconds,
    requests,
    sent: requests * pool.perBody,
    acceptedMessages: poster.accepted,
    offeredPerSecond: (requests * pool.perBody) / Math.max(0.001, schedule.seconds),
    messagesPerSecond: poster.accepted / Math.max(0.001, schedule.answeredSeconds),
    latency: latency.summary(),
    latencyFromSend: latencyFromSend.summary(),
    lateSends: schedule.lateSends,
    maxSendLagMs: schedule.maxSendLagMs,
    refused: poster.refused,
  };
}
