import { Agent, request } from 'node:http';
import type { MessagePool } from '../message-pool.js';

/** One batch request's answer as the load generator saw it. */
export interface BatchAnswer {
  /** The request got a 200 (its messages were judged one by one). */
  readonly answered: boolean;
  /** Messages of the request answered as accepted. */
  readonly accepted: number;
  /** performance.now() when the answer (or the error) arrived. */
  readonly at: number;
}

/**
 * Posts pre-signed bodies of a pool to the batch endpoint over keep-alive connections and counts
 * what was accepted and what was refused (by status, "not accepted" for refused items of a 200,
 * "connection error"). Every `post` resolves, never rejects.
 */
export class BatchPoster {
  readonly refused: Record<string, number> = {};
  accepted = 0;
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly pool: MessagePool,
    maxSockets = 64,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
    this.url = new URL('/api/v1/message/relay/batch', baseUrl);
  }

  /** Message ids of body `index`. */
  ids(index: number): readonly string[] {
    return this.pool.ids.slice(index * this.pool.perBody, (index + 1) * this.pool.perBody);
  }

  post(index: number): Promise<BatchAnswer> {
    const body = this.pool.bodies[index] as Buffer;
    const expected = this.pool.perBody;
    const refuse = (key: string, n: number) => (this.refused[key] = (this.refused[key] ?? 0) + n);
    return new Promise((resolve) => {
      const req = request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            const at = performance.now();
            if (res.statusCode !== 200) {
              refuse(String(res.statusCode), expected);
              resolve({ answered: false, accepted: 0, at });
              return;
            }
            const ok = text.match(/"status":"accepted"/g)?.length ?? 0;
            this.accepted += ok;
            if (ok < expected) refuse('not accepted', expected - ok);
            resolve({ answered: true, accepted: ok, at });
          });
        },
      );
      req.on('error', () => {
        refuse('connection error', expected);
        resolve({ answered: false, accepted: 0, at: performance.now() });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface Schedule {
  /** performance.now() of the first scheduled send. */
  readonly started: number;
  /** The schedule's span (requests × interval), or longer if the sends fell behind it, s. */
  readonly seconds: number;
  /** From the first scheduled send to the last answer, s. */
  readonly answeredSeconds: number;
  readonly requests: number;
  /** Requests sent more than one interval after their scheduled time: the load generator itself fell behind. */
  readonly lateSends: number;
  /** The most any request was sent after its scheduled time, ms. */
  readonly maxSendLagMs: number;
}

/**
 * An open loop: request k is sent at started + k * intervalMs whatever the answers to earlier
 * requests do (no waiting for answers, so a slow server is offered the same load). Resolves once
 * every request has been answered.
 */
export async function runSchedule(
  requests: number,
  intervalMs: number,
  send: (index: number, due: number) => Promise<unknown>,
): Promise<Schedule> {
  const answers: Promise<unknown>[] = [];
  let lateSends = 0;
  let maxSendLagMs = 0;
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const due = started + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const lag = performance.now() - due;
    if (lag > intervalMs) lateSends++;
    if (lag > maxSendLagMs) maxSendLagMs = lag;
    answers.push(send(i, due));
  }
  const seconds = Math.max(requests * intervalMs, performance.now() - started) / 1000;
  await Promise.all(answers);
  return { started, seconds, answeredSeconds: (performance.now() - started) / 1000, requests, lateSends, maxSendLagMs };
}
