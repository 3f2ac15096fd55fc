import WebSocket from 'ws';
import type { MessagePool } from '../message-pool.js';
import type { ProjectionProbe } from '../projection-probe.js';
import { Samples, type Distribution } from '../samples.js';
import { BatchPoster, runSchedule } from './open-loop.js';

export interface DeliveryResult {
  readonly recipients: number;
  readonly targetRate: number;
  readonly messagesPerRequest: number;
  readonly seconds: number;
  readonly sent: number;
  readonly acceptedMessages: number;
  readonly messagesPerSecond: number;
  /** Accept latency of each batch request, ms. */
  readonly acceptLatency: Distribution;
  /** From just before the HTTP request to the frame on the recipient's socket, per message, ms. */
  readonly deliveryLatency: Distribution;
  readonly delivered: number;
  /** Accepted messages that never arrived on their socket within the wait after the load. */
  readonly missing: number;
  readonly duplicates: number;
  /** Requests that could not keep the schedule: the sender fell behind the rate by more than one interval. */
  readonly lateSends: number;
  readonly refused: Readonly<Record<string, number>>;
  readonly streamErrors: number;
}

interface Frame {
  readonly type?: string;
  readonly message_id?: string;
}

/** Opens one stream per recipient and resolves once every socket is open. */
async function openStreams(
  wsUrl: string,
  addresses: readonly string[],
  onFrame: (frame: Frame) => void,
  onError: () => void,
): Promise<WebSocket[]> {
  return Promise.all(
    addresses.map(
      (address) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${wsUrl}/api/v1/stream?address=${address}`, { perMessageDeflate: false });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
          ws.on('message', (data) => {
            try {
              onFrame(JSON.parse((data as Buffer).toString()) as Frame);
            } catch {
              onError();
            }
          });
          ws.on('error', onError);
        }),
    ),
  );
}

/**
 * Open-loop delivery: `recipients` peers hold a WebSocket stream each; senders send them messages
 * at a fixed rate through the batch endpoint, one request every `1000 * perBody / rate` ms whatever
 * the answers do, and each message's latency is measured from just before its request to its
 * frame on the recipient's socket.
 */
export async function runDelivery(options: {
  baseUrl: string;
  wsUrl: string;
  recipients: readonly string[];
  pool: MessagePool;
  rate: number;
  durationSeconds: number;
  phase: string;
  probe?: ProjectionProbe;
  waitAfterMs?: number;
}): Promise<DeliveryResult> {
  const { pool, probe } = options;
  const sentAt = new Map<string, number>();
  const delivered = new Set<string>();
  const deliveryLatency = new Samples();
  const acceptLatency = new Samples();
  let duplicates = 0;
  let streamErrors = 0;

  const sockets = await openStreams(
    options.wsUrl,
    options.recipients,
    (frame) => {
      if (frame.type !== 'message' || !frame.message_id) return;
      const at = performance.now();
      const sent = sentAt.get(frame.message_id);
      if (sent === undefined) return;
      if (delivered.has(frame.message_id)) {
        duplicates++;
        return;
      }
      delivered.add(frame.message_id);
      deliveryLatency.add(at - sent);
    },
    () => streamErrors++,
  );
  // Presence is written when a stream opens; give the router's lookups a moment to see it.
  await new Promise((resolve) => setTimeout(resolve, 2000));

  const poster = new BatchPoster(options.baseUrl, pool);
  const intervalMs = (1000 * pool.perBody) / options.rate;
  const requestsPlanned = Math.min(pool.bodies.length, Math.floor((options.durationSeconds * 1000) / intervalMs));
  const schedule = await runSchedule(requestsPlanned, intervalMs, async (index) => {
    const ids = poster.ids(index);
    const t0 = performance.now();
    for (const id of ids) sentAt.set(id, t0);
    const answer = await poster.post(index);
    if (!answer.answered) {
      for (const id of ids) sentAt.delete(id);
      return;
    }
    acceptLatency.add(answer.at - t0);
    if (probe && answer.accepted === ids.length && ids[0]) probe.track(ids[0], options.phase, answer.at);
  });

  // Wait for the stragglers to arrive on their sockets.
  const waitUntil = performance.now() + (options.waitAfterMs ?? 10_000);
  while (delivered.size < sentAt.size && performance.now() < waitUntil)
    await new Promise((resolve) => setTimeout(resolve, 50));
  for (const ws of sockets) ws.close();
  poster.close();

  return {
    recipients: options.recipients.length,
    targetRate: options.rate,
    messagesPerRequest: pool.perBody,
    seconds: schedule.seconds,
    sent: requestsPlanned * pool.perBody,
    acceptedMessages: poster.accepted,
    messagesPerSecond: poster.accepted / Math.max(0.001, schedule.seconds),
    acceptLatency: acceptLatency.summary(),
    deliveryLatency: deliveryLatency.summary(),
    delivered: delivered.size,
    missing: Math.max(0, sentAt.size - delivered.size),
    duplicates,
    lateSends: schedule.lateSends,
    refused: poster.refused,
    streamErrors,
  };
}
