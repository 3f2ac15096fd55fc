import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import type { MessagePool } from '../message-pool.js';
import type { ProjectionProbe } from '../projection-probe.js';
import { Samples, type Distribution } from '../samples.js';

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
async function openStreams(wsUrl: string, addresses: readonly string[], onFrame: (frame: Frame) => void, onError: () => void): Promise<WebSocket[]> {
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
  const refused: Record<string, number> = {};
  let duplicates = 0;
  let streamErrors = 0;
  let outstanding = 0;

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

  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL('/api/v1/message/relay/batch', options.baseUrl);
  const intervalMs = (1000 * pool.perBody) / options.rate;
  const requestsPlanned = Math.min(pool.bodies.length, Math.floor((options.durationSeconds * 1000) / intervalMs));
  let accepted = 0;
  let lateSends = 0;
  let done = false;
  let allAnswered!: () => void;
  const answered = new Promise<void>((resolve) => (allAnswered = resolve));

  const send = (index: number) => {
    const body = pool.bodies[index] as Buffer;
    const ids = pool.ids.slice(index * pool.perBody, (index + 1) * pool.perBody);
    const t0 = performance.now();
    for (const id of ids) sentAt.set(id, t0);
    outstanding++;
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const t1 = performance.now();
        acceptLatency.add(t1 - t0);
        if (res.statusCode === 200) {
          const ok = text.match(/"status":"accepted"/g)?.length ?? 0;
          accepted += ok;
          if (ok < ids.length) refused['not accepted'] = (refused['not accepted'] ?? 0) + ids.length - ok;
          if (probe && ok === ids.length && ids[0]) probe.track(ids[0], options.phase, t1);
        } else {
          refused[String(res.statusCode)] = (refused[String(res.statusCode)] ?? 0) + ids.length;
          for (const id of ids) sentAt.delete(id);
        }
        if (--outstanding === 0 && done) allAnswered();
      });
    });
    req.on('error', () => {
      refused['connection error'] = (refused['connection error'] ?? 0) + ids.length;
      for (const id of ids) sentAt.delete(id);
      if (--outstanding === 0 && done) allAnswered();
    });
    req.end(body);
  };

  const started = performance.now();
  for (let i = 0; i < requestsPlanned; i++) {
    const due = started + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -intervalMs) lateSends++;
    send(i);
  }
  const loadSeconds = (performance.now() - started) / 1000;
  done = true;
  if (outstanding > 0) await answered;

  // Wait for the stragglers to arrive on their sockets.
  const waitUntil = performance.now() + (options.waitAfterMs ?? 10_000);
  while (delivered.size < sentAt.size && performance.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 50));
  for (const ws of sockets) ws.close();
  agent.destroy();

  return {
    recipients: options.recipients.length,
    targetRate: options.rate,
    messagesPerRequest: pool.perBody,
    seconds: loadSeconds,
    sent: requestsPlanned * pool.perBody,
    acceptedMessages: accepted,
    messagesPerSecond: accepted / Math.max(0.001, loadSeconds),
    acceptLatency: acceptLatency.summary(),
    deliveryLatency: deliveryLatency.summary(),
    delivered: delivered.size,
    missing: Math.max(0, sentAt.size - delivered.size),
    duplicates,
    lateSends,
    refused,
    streamErrors,
  };
}
