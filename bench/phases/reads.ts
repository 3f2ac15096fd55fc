import type { MessagePool } from '../message-pool.js';
import { Samples, type Distribution } from '../samples.js';

export interface ReadsResult {
  readonly pairs: number;
  /** GET /messages with the send's consistency token, right after its 202: includes the wait for the projection. */
  readonly firstRead: Distribution;
  /** The same read again at once: the projection is there, so this is a read with nothing to wait for. */
  readonly secondRead: Distribution;
  /** firstRead - secondRead per pair: what waiting for the write adds. */
  readonly added: Distribution;
  /** First reads answered `Relay-Consistency: stale`, and first reads that did not show the message. */
  readonly stale: number;
  readonly missing: number;
}

/**
 * Read-your-writes latency: one client sends a message, then at once reads the recipient's
 * mailbox with the send's consistency token, then reads it again. Pairs run one after another,
 * so the relay is otherwise idle: this is what the consistency wait itself costs.
 */
export async function runReads(options: { baseUrl: string; pool: MessagePool }): Promise<ReadsResult> {
  const first = new Samples();
  const second = new Samples();
  const added = new Samples();
  let stale = 0;
  let missing = 0;
  for (const body of options.pool.bodies) {
    const message = JSON.parse(body.toString()) as { message_id: string; to_address: string };
    const sent = await fetch(`${options.baseUrl}/api/v1/message/relay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const { consistency_token: token } = (await sent.json()) as { consistency_token: string };
    const read = async () => {
      const started = performance.now();
      const answer = await fetch(`${options.baseUrl}/api/v1/messages?address=${message.to_address}`, {
        headers: { 'consistency-token': token },
      });
      const page = (await answer.json()) as { messages: { message_id: string }[] };
      return {
        ms: performance.now() - started,
        stale: answer.headers.get('relay-consistency') !== 'consistent',
        found: page.messages.some((m) => m.message_id === message.message_id),
      };
    };
    const a = await read();
    const b = await read();
    first.add(a.ms);
    second.add(b.ms);
    added.add(a.ms - b.ms);
    if (a.stale) stale++;
    if (!a.found) missing++;
  }
  return {
    pairs: options.pool.bodies.length,
    firstRead: first.summary(),
    secondRead: second.summary(),
    added: added.summary(),
    stale,
    missing,
  };
}
