import { hash, randomUUID } from 'node:crypto';
import { AppError } from '../errors/app-error.js';
import { RelayFailure } from '../errors/failure.js';
import { messageExpiry } from '../events/lifetime.js';
import { requestedExpiry } from './requested-expiry.js';
import type { RelayEvent } from '../events/types.js';
import type { RecordPosition } from '../kafka/batching-producer.js';
import type { EventPublisher } from '../kafka/event-publisher.js';
import type { SignatureVerifier } from '../crypto/signatures.js';
import type { Pool } from '../postgres/pool.js';
import type { Redis } from '../redis/client.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import type { Logger } from '../observability/logger.js';
import { sleep } from '../lifecycle/service.js';
import { Admission, type Admitted, type Limit, type RecipientLimit } from './admission.js';
import type { IdempotencyStore } from './idempotency.js';
import { ReadConsistency } from './read-consistency.js';
import { MAX_CONTENT_BYTES, RelayRequest, type Accepted, type AckAnswer, type AckStatus } from '../api/messages.js';
import { validator } from '../api/validate.js';
import { invalid, type Fields } from './validation.js';
import { toAppError } from './problem.js';

const parseMessage = validator(RelayRequest, 'message');

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
  consistency_token: ReadConsistency.token('mailbox', [position]),
});

const PENDING_WAIT_MS = 10_000;
/** An acknowledgement's claim while its MessageDelivered is produced, and once Kafka has it. */
const ACK_PENDING_SECONDS = 30;
const ACK_DONE_SECONDS = 3600;

/**
 * Sending and acknowledging messages: validate, verify the sender's signature, make the message
 * id idempotent, and produce the event; a message is answered only once every in-sync replica
 * has its event.
 */
export class MessageRelay {
  private readonly admission: Admission;
  private readonly redisKeys: RedisKeys;

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
      readonly senderLimit?: Limit;
      /** Messages per second per recipient address: new key pairs are free, so senders' limits alone do not protect a mailbox. */
      readonly recipientLimit?: RecipientLimit;
      /** Decides acknowledgements of messages the read model does not have yet. */
      readonly consistency: ReadConsistency;
      readonly log?: Logger;
    },
  ) {
    this.admission = new Admission(deps.redis, deps.idempotency, deps.senderLimit, deps.recipientLimit);
    this.redisKeys = redisKeys(deps.redisPrefix);
  }

  /** Relays each message; the result for each is its 202 body or the error that refused it. */
  async relay(inputs: readonly unknown[]): Promise<(Accepted | AppError)[]> {
    const results: (Accepted | AppError | undefined)[] = new Array<Accepted | AppError | undefined>(inputs.length);
    const checked: { index: number; message: Checked }[] = [];
    inputs.forEach((input, index) => {
      try {
        checked.push({ index, message: this.check(input) });
      } catch (error) {
        results[index] =
          error instanceof AppError
            ? error
            : new AppError('internal_error', 'The message could not be checked.', { cause: error });
      }
    });

    // Each id is decided once: a batch that names an id again gets the first one's answer.
    const firstOf = new Map<string, { index: number; message: Checked }>();
    const repeats: { index: number; message: Checked; first: { index: number; message: Checked } }[] = [];
    const unique = checked.filter((entry) => {
      const first = firstOf.get(entry.message.messageId);
      if (first) repeats.push({ ...entry, first });
      else firstOf.set(entry.message.messageId, entry);
      return !first;
    });

    const admitted = await this.admission.decide(unique.map(({ message }) => message));
    const fresh: { index: number; message: Checked }[] = [];
    const waiting: Promise<void>[] = [];
    unique.forEach((entry, i) => {
      const { claim, limited } = admitted[i] as Admitted;
      if (claim.kind !== 'new' && claim.fingerprint !== entry.message.fingerprint)
        results[entry.index] = conflict(entry.message.messageId);
      else if (claim.kind === 'accepted') results[entry.index] = accepted(entry.message.messageId, claim.position);
      else if (claim.kind === 'pending')
        waiting.push(this.awaitPending(entry.message).then((result) => void (results[entry.index] = result)));
      else if (limited) results[entry.index] = limited;
      else fresh.push(entry);
    });

    const now = Date.now();
    const positions = this.deps.events.publish(
      fresh.map(({ message }): RelayEvent => ({
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
      })),
    );
    const settled = await Promise.allSettled(positions);
    const done: { id: string; fingerprint: string; position: RecordPosition; to: string }[] = [];
    const failed: string[] = [];
    settled.forEach((outcome, i) => {
      const { index, message } = fresh[i] as { index: number; message: Checked };
      if (outcome.status === 'fulfilled') {
        done.push({ id: message.messageId, fingerprint: message.fingerprint, position: outcome.value, to: message.to });
        results[index] = accepted(message.messageId, outcome.value);
      } else {
        failed.push(message.messageId);
        // The producer's own refusals (overloaded, Kafka unavailable) become their HTTP codes here.
        results[index] =
          outcome.reason instanceof AppError || outcome.reason instanceof RelayFailure
            ? toAppError(outcome.reason)
            : new AppError('internal_error', 'Producing failed.', { cause: outcome.reason });
      }
    });
    // Kafka has the accepted events: a failure to record that in Redis must not turn them into
    // errors (a retry would produce them again once the pending claims lapse).
    const recorded = this.deps.idempotency
      .accepted(done)
      .catch((error: unknown) => this.deps.log?.warn({ err: error }, 'could not record accepted message ids'));
    await Promise.all([recorded, this.deps.idempotency.release(failed), ...waiting]);
    for (const { index, message, first } of repeats) {
      results[index] =
        message.fingerprint === first.message.fingerprint ? results[first.index] : conflict(message.messageId);
    }
    return results as (Accepted | AppError)[];
  }

  /**
   * One MessageDelivered for each listed message accepted for `address` and not yet delivered,
   * decided from the log: the read model first, then the id's idempotency record (written once
   * Kafka stored the MessageSent, naming its recipient), and for ids neither knows, the read model
   * once it has applied the recipient's partition up to its current end. Partition order makes
   * the projector apply the MessageSent before the MessageDelivered. Every id gets an answer.
   */
  async acknowledge(address: string, ids: readonly string[], via: 'http' | 'stream'): Promise<AckAnswer> {
    // The ids' shapes were checked with the request (AckRequest, AckFrame).
    const messageIds = [...new Set(ids.map((id) => id.toLowerCase()))];
    const decided = new Map<string, AckStatus | 'deliver'>();
    const fromReadModel = async (unknown: readonly string[]) => {
      const { rows } = await this.deps.pool.query<{ id: string; delivered: boolean; expired: boolean }>(
        'SELECT id, delivered, expired FROM messages WHERE id = ANY($1::uuid[]) AND receiver_address = $2',
        [unknown, address],
      );
      for (const row of rows)
        decided.set(row.id, row.delivered ? 'already_delivered' : row.expired ? 'expired' : 'deliver');
    };
    const undecided = () => messageIds.filter((id) => !decided.has(id));

    // The idempotency records first, and whether the projector had applied each one's MessageSent
    // before the read model is asked: applied then, yet not in the read model, means purged since.
    const claims = await this.deps.idempotency.lookupMany(messageIds);
    const mailbox = this.deps.consistency.topic('mailbox');
    const appliedBefore = claims.map(
      (claim) =>
        claim.kind === 'accepted' &&
        this.deps.consistency.covers([
          { topic: mailbox, partition: claim.position.partition, offset: BigInt(claim.position.offset) },
        ]),
    );
    await fromReadModel(messageIds);
    messageIds.forEach((id, i) => {
      const claim = claims[i];
      if (decided.has(id) || claim?.kind !== 'accepted' || claim.to !== address) return;
      decided.set(id, appliedBefore[i] ? 'not_found' : 'deliver');
    });
    if (undecided().length > 0) {
      const caughtUp = await this.deps.consistency.awaitLogEnd('mailbox', address);
      await fromReadModel(undecided());
      for (const id of undecided()) decided.set(id, caughtUp ? 'not_found' : 'not_yet_known');
    }

    // Two acknowledgements racing for one message produce one event: the first claim wins. A
    // claim is `P` (briefly, so a crash mid-produce frees it) until Kafka has the event, then `D`.
    const ackKey = (id: string) => this.redisKeys.ack(id);
    const deliver = messageIds.filter((id) => decided.get(id) === 'deliver');
    const before = await Promise.all(
      deliver.map((id) => this.deps.redis.set(ackKey(id), 'P', 'EX', ACK_PENDING_SECONDS, 'NX', 'GET')),
    );
    const mine = deliver.filter((id, i) => {
      decided.set(id, before[i] === null ? 'acknowledged' : before[i] === 'D' ? 'already_delivered' : 'not_yet_known');
      return before[i] === null;
    });
    const now = Date.now();
    const events: RelayEvent[] = mine.map((id) => ({
      type: 'MessageDelivered',
      data: { event_id: randomUUID(), occurred_at: now, message_id: id, to_address: address, via },
    }));
    let positions: RecordPosition[];
    try {
      positions = await Promise.all(this.deps.events.publish(events));
    } catch (error) {
      if (mine.length > 0) await this.deps.redis.del(...mine.map(ackKey));
      throw error;
    }
    await Promise.all(mine.map((id) => this.deps.redis.set(ackKey(id), 'D', 'EX', ACK_DONE_SECONDS)));
    return {
      acknowledged: mine.length,
      results: messageIds.map((id) => ({ message_id: id, status: decided.get(id) as AckStatus })),
      consistency_token: ReadConsistency.token('mailbox', positions),
    };
  }

  private check(input: unknown): Checked {
    const body = parseMessage(input);
    const messageId = body.message_id.toLowerCase();
    const { from_address: from, to_address: to, message_type: type, encrypted_content: content, signature } = body;
    // The schema bounds characters; a character may take up to four bytes.
    if (Buffer.byteLength(content, 'utf8') > MAX_CONTENT_BYTES) {
      throw invalid('encrypted_content', `encrypted_content must be at most ${MAX_CONTENT_BYTES} bytes of UTF-8.`);
    }
    // Not signed, and not part of the fingerprint: a delivery instruction to the relay (api.md).
    const requestedAt = requestedExpiry(body, Date.now());

    const verified = this.deps.verifier.verify(signature);
    const claims: Fields = verified.payload;
    // crypto.hash, one-shot, costs less than a Hash object per message.
    const contentSha256 = hash('sha256', content, 'base64url');
    if (verified.address !== from)
      throw new AppError('bad_signature', "The signing key's address is not from_address.");
    const mismatch = (
      [
        ['message_id', messageId],
        ['from', from],
        ['to', to],
        ['type', type],
        ['sha256', contentSha256],
      ] as const
    ).find(
      ([claim, value]) => (claim === 'message_id' ? String(claims[claim]).toLowerCase() : claims[claim]) !== value,
    );
    if (mismatch) throw new AppError('bad_signature', `The signed "${mismatch[0]}" does not match the message.`);
    this.deps.verifier.checkFreshness(claims);

    const fingerprint = hash('sha256', `${from}\n${to}\n${type}\n${contentSha256}`, 'base64url').slice(0, 22);
    return { messageId, from, to, type, content, contentSha256, signature, fingerprint, requestedExpiry: requestedAt };
  }

  /** Another request is producing the same message: answer as it is answered. */
  private async awaitPending(message: Checked): Promise<Accepted | AppError> {
    const deadline = Date.now() + PENDING_WAIT_MS;
    while (Date.now() < deadline) {
      const claim = await this.deps.idempotency.lookup(message.messageId);
      if (claim.kind === 'accepted') {
        return claim.fingerprint === message.fingerprint
          ? accepted(message.messageId, claim.position)
          : conflict(message.messageId);
      }
      if (claim.kind === 'new') break;
      await sleep(20);
    }
    return new AppError('dependency_unavailable', 'A request with the same message id did not finish; retry.', {
      extensions: { retry_after: 1 },
    });
  }
}

const conflict = (messageId: string) =>
  new AppError('message_id_conflict', `Message id ${messageId} was already used for other content.`, {
    extensions: { message_id: messageId },
  });
