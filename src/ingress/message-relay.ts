import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '../errors/app-error.js';
import { messageExpiry } from '../expiry/lifetime.js';
import { requestedExpiry } from '../expiry/requested-expiry.js';
import type { RelayEvent } from '../events/types.js';
import type { RecordPosition } from '../kafka/batching-producer.js';
import type { EventPublisher } from '../kafka/event-publisher.js';
import type { SignatureVerifier } from '../crypto/signatures.js';
import type { Pool } from '../postgres/pool.js';
import type { Redis } from '../presence/redis.js';
import { sleep } from '../lifecycle/service.js';
import type { Claim, IdempotencyStore } from './idempotency.js';
import type { Rate, RateLimiter } from './rate-limit.js';
import { addressAt, invalid, isUuid, objectAt, stringAt, uuidAt, type Fields } from './validation.js';

export const MAX_CONTENT_BYTES = 65_536;
export const MAX_MESSAGE_TYPE = 50;
export const MAX_BATCH = 500;
export const MAX_ACK_IDS = 1000;

/** The 202 answer for an accepted message. */
export interface Accepted {
  readonly message_id: string;
  readonly status: 'accepted';
  readonly partition: number;
  readonly offset: string;
}

interface Checked {
  readonly messageId: string;
  readonly from: string;
  readonly to: string;
  readonly type: string;
  readonly content: string;
  readonly contentSha256: string;
  readonly signature: string;
  readonly fingerprint: string;
  /** The sender's `expires_at`, if it asked for one (ms since the epoch). */
  readonly requestedExpiry: number | undefined;
}

const accepted = (messageId: string, position: RecordPosition): Accepted => ({
  message_id: messageId,
  status: 'accepted',
  partition: position.partition,
  offset: position.offset,
});

const PENDING_WAIT_MS = 10_000;

/**
 * Sending and acknowledging messages: validate, verify the sender's signature, make the message
 * id idempotent, and produce the event; a message is answered only once every in-sync replica
 * has its event.
 */
export class MessageRelay {
  constructor(
    private readonly deps: {
      readonly verifier: SignatureVerifier;
      readonly events: EventPublisher;
      readonly idempotency: IdempotencyStore;
      readonly pool: Pool;
      readonly redis: Redis;
      readonly redisPrefix: string;
      readonly nodeId: string;
      /** The longest a message is offered undelivered (RELAY_MESSAGE_TTL_SECONDS). */
      readonly messageTtlSeconds: number;
      /** Messages per second per sender address, decided in Redis for the whole batch at once. */
      readonly senderLimit?: { readonly limiter: RateLimiter; readonly rate: Rate };
    },
  ) {}

  /** Relays each message; the result for each is its 202 body or the error that refused it. */
  async relay(inputs: readonly unknown[]): Promise<(Accepted | AppError)[]> {
    const results: (Accepted | AppError | undefined)[] = new Array<Accepted | AppError | undefined>(inputs.length);
    const checked: { index: number; message: Checked }[] = [];
    inputs.forEach((input, index) => {
      try {
        checked.push({ index, message: this.check(input) });
      } catch (error) {
        results[index] = error instanceof AppError ? error : new AppError('internal_error', 'The message could not be checked.', { cause: error });
      }
    });

    // One round trip for the whole request: each message's sender-rate decision and its id claim.
    const claims = await this.claimAndLimit(checked.map(({ message }) => message));
    const fresh: { index: number; message: Checked }[] = [];
    const waiting: Promise<void>[] = [];
    const released: string[] = [];
    checked.forEach((entry, i) => {
      const { claim, limited } = claims[i] ?? { claim: { kind: 'new' } as Claim, limited: undefined };
      if (claim.kind !== 'new' && claim.fingerprint !== entry.message.fingerprint) results[entry.index] = conflict(entry.message.messageId);
      else if (claim.kind === 'accepted') results[entry.index] = accepted(entry.message.messageId, claim.position);
      else if (claim.kind === 'pending') waiting.push(this.awaitPending(entry.message).then((result) => void (results[entry.index] = result)));
      else if (limited) {
        results[entry.index] = limited;
        released.push(entry.message.messageId);
      } else fresh.push(entry);
    });
    await this.deps.idempotency.release(released);

    const now = Date.now();
    const positions = this.deps.events.publish(
      fresh.map(
        ({ message }): RelayEvent => ({
          type: 'MessageSent',
          data: {
            event_id: randomUUID(),
            occurred_at: now,
            message_id: message.messageId,
            from_address: message.from,
            to_address: message.to,
            message_type: message.type,
            encrypted_content: message.content,
            content_sha256: message.contentSha256,
            signature: message.signature,
            node_id: this.deps.nodeId,
            expires_at: messageExpiry(now, message.requestedExpiry, this.deps.messageTtlSeconds),
          },
        }),
      ),
    );
    const settled = await Promise.allSettled(positions);
    const done: { id: string; fingerprint: string; position: RecordPosition }[] = [];
    const failed: string[] = [];
    settled.forEach((outcome, i) => {
      const { index, message } = fresh[i] as { index: number; message: Checked };
      if (outcome.status === 'fulfilled') {
        done.push({ id: message.messageId, fingerprint: message.fingerprint, position: outcome.value });
        results[index] = accepted(message.messageId, outcome.value);
      } else {
        failed.push(message.messageId);
        results[index] = outcome.reason instanceof AppError ? outcome.reason : new AppError('internal_error', 'Producing failed.', { cause: outcome.reason });
      }
    });
    await Promise.all([this.deps.idempotency.accepted(done), this.deps.idempotency.release(failed), ...waiting]);
    return results as (Accepted | AppError)[];
  }

  /**
   * One MessageDelivered for each listed message that is addressed to `address` and not yet
   * delivered; the rest are ignored. Returns how many were acknowledged.
   */
  async acknowledge(address: string, ids: readonly unknown[], via: 'http' | 'stream'): Promise<number> {
    const messageIds = [...new Set(ids.map((id, i) => {
      if (!isUuid(id)) throw invalid(`message_ids[${i}]`, `message_ids[${i}] must be a UUID.`);
      return id.toLowerCase();
    }))];
    const { rows } = await this.deps.pool.query<{ id: string }>(
      'SELECT id FROM messages WHERE id = ANY($1::uuid[]) AND receiver_address = $2 AND NOT delivered',
      [messageIds, address],
    );
    if (rows.length === 0) return 0;
    // Two acknowledgements racing for one message produce one event: the first claim wins.
    const claims = await Promise.all(rows.map(({ id }) => this.deps.redis.set(`${this.deps.redisPrefix}ack:${id}`, '1', 'EX', 3600, 'NX')));
    const mine = rows.filter((_, i) => claims[i] === 'OK').map((r) => r.id);
    const now = Date.now();
    const events: RelayEvent[] = mine.map((id) => ({
      type: 'MessageDelivered',
      data: { event_id: randomUUID(), occurred_at: now, message_id: id, to_address: address, via },
    }));
    try {
      await Promise.all(this.deps.events.publish(events));
    } catch (error) {
      await this.deps.redis.del(...mine.map((id) => `${this.deps.redisPrefix}ack:${id}`));
      throw error;
    }
    return mine.length;
  }

  /**
   * Claims each message id and, per sender address, takes one message from its rate budget. The
   * signature was checked first, so nobody spends another's budget. Every command goes out in
   * the same auto-pipelined write, shared with the other requests of this event-loop turn.
   */
  private claimAndLimit(messages: readonly Checked[]): Promise<{ claim: Claim; limited: AppError | undefined }[]> {
    const limit = this.deps.senderLimit;
    return Promise.all(
      messages.map(async (message) => {
        const [decision, claim] = await Promise.all([
          limit?.limiter.decide({ key: `sender:${message.from}`, rate: limit.rate }),
          this.deps.idempotency.claim({ id: message.messageId, fingerprint: message.fingerprint }),
        ]);
        const limited =
          !limit || !decision || decision.allowed
            ? undefined
            : new AppError('rate_limited', `Sender ${message.from} is over its rate of ${limit.rate.perSecond} messages/s.`, {
                extensions: { retry_after: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)), message_id: message.messageId },
              });
        return { claim, limited };
      }),
    );
  }

  private check(input: unknown): Checked {
    const body = objectAt(input, 'message');
    const messageId = uuidAt(body, 'message_id');
    const from = addressAt(body, 'from_address');
    const to = addressAt(body, 'to_address');
    const type = stringAt(body, 'message_type', { maxLength: MAX_MESSAGE_TYPE });
    const content = stringAt(body, 'encrypted_content', { maxBytes: MAX_CONTENT_BYTES });
    const signature = stringAt(body, 'signature', { maxLength: 8192 });
    // Not signed, and not part of the fingerprint: a delivery instruction to the relay (api.md).
    const requestedAt = requestedExpiry(body, Date.now());

    const verified = this.deps.verifier.verify(signature);
    const claims: Fields = verified.payload;
    const contentSha256 = createHash('sha256').update(content, 'utf8').digest('base64url');
    if (verified.address !== from) throw new AppError('bad_signature', 'The signing key\'s address is not from_address.');
    const mismatch = (
      [
        ['message_id', messageId],
        ['from', from],
        ['to', to],
        ['type', type],
        ['sha256', contentSha256],
      ] as const
    ).find(([claim, value]) => (claim === 'message_id' ? String(claims[claim]).toLowerCase() : claims[claim]) !== value);
    if (mismatch) throw new AppError('bad_signature', `The signed "${mismatch[0]}" does not match the message.`);
    this.deps.verifier.checkFreshness(claims);

    const fingerprint = createHash('sha256').update(`${from}\n${to}\n${type}\n${contentSha256}`).digest('base64url').slice(0, 22);
    return { messageId, from, to, type, content, contentSha256, signature, fingerprint, requestedExpiry: requestedAt };
  }

  /** Another request is producing the same message: answer as it is answered. */
  private async awaitPending(message: Checked): Promise<Accepted | AppError> {
    const deadline = Date.now() + PENDING_WAIT_MS;
    while (Date.now() < deadline) {
      const claim = await this.deps.idempotency.lookup(message.messageId);
      if (claim.kind === 'accepted') {
        return claim.fingerprint === message.fingerprint ? accepted(message.messageId, claim.position) : conflict(message.messageId);
      }
      if (claim.kind === 'new') break;
      await sleep(20);
    }
    return new AppError('dependency_unavailable', 'A request with the same message id did not finish; retry.', { extensions: { retry_after: 1 } });
  }
}

const conflict = (messageId: string) =>
  new AppError('message_id_conflict', `Message id ${messageId} was already used for other content.`, { extensions: { message_id: messageId } });
