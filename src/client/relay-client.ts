import { deriveAddress, isAddress, type PublicJwk } from '../crypto/address.js';
import { AccessTokens } from './access-tokens.js';
import {
  asRelayedMessage,
  openMessage,
  resignMessage,
  sameKey,
  sealMessage,
  signRegistration,
  verifyRegistration,
  type SealOptions,
} from './envelope.js';
import { EnvelopeError, RelayClientError, isProblemDocument, unexpected } from './errors.js';
import { HttpTransport } from './http-transport.js';
import { publicEncryptionJwk, publicSigningJwk, type PeerIdentity } from './identity.js';
import { MessageStream, type StreamOptions } from './message-stream.js';
import { fetchTrusting } from './tls-fetch.js';
import type { MessageProof } from './proofs.js';
import type {
  Accepted,
  MailboxPage,
  OpenedMessage,
  OutgoingMessage,
  PeerRecord,
  Recipient,
  Registered,
  RelayedMessage,
} from './types.js';

export interface RelayClientOptions {
  /** Where the relay listens, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** Whose keys sign, decrypt and name the mailbox. */
  readonly identity: PeerIdentity;
  /** Sent as `X-API-Key` on every /api/v1 request and stream upgrade. Off unless set. */
  readonly apiKey?: string | undefined;
  /**
   * Obtain an address-bound access token (challenge, signed proof, token) and send it as
   * `Authorization: Bearer` when reading the mailbox, acknowledging and opening the stream.
   * Off by default, as a relay with RELAY_AUTH=off does not need it; a relay with
   * RELAY_AUTH=required (its default) refuses those three calls without it.
   */
  readonly useTokens?: boolean | undefined;
  /** Refresh a token this many seconds before it expires; default 60 (at most half its lifetime). */
  readonly tokenRefreshMarginSeconds?: number | undefined;
  /** Sent as `connection_info` on `register()` unless it is given one. */
  readonly connectionInfo?: Readonly<Record<string, unknown>> | undefined;
  /** Per-request time limit; default 30 s. */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * PEM of the CA that signed the relay's certificate, when it is not one the system trusts
   * (e.g. `.relay/certs/ca.pem` from `relay dev-certs`). Used for HTTPS and for WSS.
   */
  readonly ca?: string | Buffer | undefined;
  /** Defaults to the global fetch (or, with `ca`, a node:https fetch that trusts it). */
  readonly fetch?: typeof fetch | undefined;
}

/** Who to send to: an address (its keys are fetched from the relay), or a peer record or recipient already at hand. */
export type SendTarget = string | Recipient;

/** The `202` answer together with the message as sent (keep it to retry with the same id). */
export interface SentMessage extends Accepted {
  readonly message: OutgoingMessage;
}

export type BatchResult =
  | { readonly message: OutgoingMessage; readonly accepted: Accepted }
  | { readonly message: OutgoingMessage; readonly error: RelayClientError };

/** A mailbox message this client refused, with the reason. It is left unacknowledged. */
export interface RejectedMessage {
  readonly message: RelayedMessage;
  readonly error: EnvelopeError;
}

export interface ReceivedPage {
  readonly messages: OpenedMessage[];
  readonly rejected: RejectedMessage[];
  readonly next_cursor: string | null;
}

export interface DrainResult {
  readonly handled: number;
  readonly rejected: RejectedMessage[];
  readonly acknowledged: number;
}

const MAX_BATCH = 500;

const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

/**
 * The reference client for one peer: registers its keys, sends end-to-end-encrypted, signed
 * messages, and receives them by stream or by polling, verifying every sender's signature itself
 * before decrypting. The relay only ever sees ciphertext.
 */
export class RelayClient {
  readonly identity: PeerIdentity;
  private readonly written = new WrittenPositions();
  private lastStream: MessageStream | undefined;
  private readonly transport: HttpTransport;
  private readonly tokens: AccessTokens | undefined;

  constructor(private readonly options: RelayClientOptions) {
    this.identity = options.identity;
    this.transport = new HttpTransport({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      timeoutMs: options.requestTimeoutMs,
      fetch: options.fetch ?? (options.ca === undefined ? undefined : fetchTrusting(options.ca)),
    });
    this.tokens = options.useTokens
      ? new AccessTokens(this.transport, options.identity, { refreshMarginSeconds: options.tokenRefreshMarginSeconds })
      : undefined;
  }

  /** This peer's address: the thumbprint of its signing key. */
  get address(): string {
    return this.identity.address;
  }

  /** Registers (or re-registers) this peer's encryption key; resolves once the relay has the event durably. */
  async register(
    connectionInfo: Readonly<Record<string, unknown>> = this.options.connectionInfo ?? {},
  ): Promise<Registered> {
    const registration = await signRegistration(this.identity, connectionInfo);
    const answer = await this.transport.request<Registered>('POST', '/peer/register', { body: { registration } });
    if (answer.address !== this.address)
      throw unexpected(`The relay registered ${String(answer.address)}, not ${this.address}.`);
    this.written.remember(answer.consistency_token);
    return answer;
  }

  /**
   * A registered peer's keys, checked: the signing key must be the one the address is the
   * thumbprint of, and when the relay includes the peer's signed registration, the encryption key
   * must be the one the peer signed. Otherwise the relay could hand out a key of its own.
   */
  async getPeer(address: string): Promise<PeerRecord> {
    if (!isAddress(address)) throw new TypeError(`${String(address)} is not an address (43 base64url characters).`);
    const answer = await this.transport.request<Record<string, unknown>>('GET', `/peers/${address}`, {
      query: { consistency_token: this.written.token() },
    });
    let signingKey: PublicJwk;
    let encryptionKey: PublicJwk;
    try {
      signingKey = publicSigningJwk(answer['signing_key']);
      encryptionKey = publicEncryptionJwk(answer['encryption_key']);
    } catch (error) {
      throw new EnvelopeError(
        'untrusted_peer_key',
        `The relay's record of ${address} has unusable keys: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
    const thumbprint = deriveAddress(signingKey);
    if (answer['address'] !== address || thumbprint !== address) {
      throw new EnvelopeError(
        'untrusted_peer_key',
        `The relay answered for ${address} with a signing key whose thumbprint is ${thumbprint}.`,
      );
    }
    let attested = false;
    const registration = answer['registration'];
    if (typeof registration === 'string') {
      const signed = await verifyRegistration(registration);
      if (signed.address !== address || !sameKey(signed.encryption_key, encryptionKey)) {
        throw new EnvelopeError(
          'untrusted_peer_key',
          `The encryption key the relay gave for ${address} is not the one in the peer's signed registration.`,
        );
      }
      attested = true;
    }
    const lastSeen = answer['last_seen'];
    return {
      address,
      signing_key: signingKey,
      encryption_key: encryptionKey,
      connection_info: asRecord(answer['connection_info']),
      last_seen: typeof lastSeen === 'string' ? lastSeen : null,
      online: answer['online'] === true,
      registered_at: typeof answer['registered_at'] === 'string' ? answer['registered_at'] : '',
      encryption_key_attested: attested,
    };
  }

  /**
   * `getPeer`, retrying `peer_not_found` until `timeoutMs`: the read model catches up with a
   * registration shortly after its `202`.
   */
  async waitForPeer(address: string, timeoutMs = 10_000): Promise<PeerRecord> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      try {
        return await this.getPeer(address);
      } catch (error) {
        if (!(error instanceof RelayClientError && error.code === 'peer_not_found') || Date.now() + delay > deadline)
          throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /** Encrypts and signs a message without sending it (`relay()` sends it; keep it to retry). */
  async seal(to: SendTarget, plaintext: Uint8Array | string, options: SealOptions = {}): Promise<OutgoingMessage> {
    const recipient = typeof to === 'string' ? await this.getPeer(to) : to;
    return sealMessage(this.identity, recipient, plaintext, options);
  }

  /** Encrypts, signs and sends one message; resolves once the relay has its event on every in-sync replica. */
  async send(to: SendTarget, plaintext: Uint8Array | string, options: SealOptions = {}): Promise<SentMessage> {
    const message = await this.seal(to, plaintext, options);
    return { ...(await this.relay(message)), message };
  }

  /**
   * Sends a sealed message. Safe to call again with the same message after a timeout or a
   * retriable error: the relay de-duplicates by id. A `stale_signature` answer is handled by
   * signing again once, since a retry may come long after sealing.
   */
  async relay(message: OutgoingMessage): Promise<Accepted> {
    try {
      return this.checkAccepted(await this.transport.request<Accepted>('POST', '/message/relay', { body: message }));
    } catch (error) {
      if (!(error instanceof RelayClientError && error.code === 'stale_signature')) throw error;
      const fresh = await resignMessage(this.identity, message);
      return this.checkAccepted(await this.transport.request<Accepted>('POST', '/message/relay', { body: fresh }));
    }
  }

  /** Seals and sends up to 500 messages in one request; each gets its own result, in order. */
  async sendBatch(
    items: readonly { to: SendTarget; plaintext: Uint8Array | string; type?: string; messageId?: string }[],
  ): Promise<BatchResult[]> {
    const recipients = new Map<string, Promise<Recipient>>();
    const recipientOf = (to: SendTarget): Promise<Recipient> => {
      if (typeof to !== 'string') return Promise.resolve(to);
      let found = recipients.get(to);
      if (!found) recipients.set(to, (found = this.getPeer(to)));
      return found;
    };
    const messages = await Promise.all(
      items.map(async (item) =>
        sealMessage(this.identity, await recipientOf(item.to), item.plaintext, {
          ...(item.type === undefined ? {} : { type: item.type }),
          ...(item.messageId === undefined ? {} : { messageId: item.messageId }),
        }),
      ),
    );
    const results = await this.relayBatch(messages);
    return messages.map((message, i) => {
      const result = results[i] as Accepted | RelayClientError;
      return result instanceof RelayClientError ? { message, error: result } : { message, accepted: result };
    });
  }

  /** Sends sealed messages in one request (`POST /api/v1/message/relay/batch`); each result is its 202 body or the error that refused it. */
  async relayBatch(messages: readonly OutgoingMessage[]): Promise<(Accepted | RelayClientError)[]> {
    if (messages.length === 0) return [];
    if (messages.length > MAX_BATCH) throw new RangeError(`A batch holds at most ${MAX_BATCH} messages; split it.`);
    const answer = await this.transport.request<{ results?: unknown }>('POST', '/message/relay/batch', {
      body: { messages },
    });
    const results = answer.results;
    if (!Array.isArray(results) || results.length !== messages.length)
      throw unexpected('The batch answer does not hold one result per message.');
    return results.map((result: unknown) => {
      if (isProblemDocument(result)) return RelayClientError.fromProblem(result);
      return this.checkAccepted(result as Accepted);
    });
  }

  /** One page of this peer's undelivered messages as the relay stores them: still encrypted, not yet verified. */
  async fetchMessages(options: { after?: string | undefined; limit?: number | undefined } = {}): Promise<MailboxPage> {
    const query = {
      address: this.address,
      after: options.after,
      limit: options.limit,
      consistency_token: this.written.token(),
    };
    const page = await this.withBearer((bearer) =>
      this.transport.request<{ messages?: unknown; next_cursor?: unknown }>('GET', '/messages', { query, bearer }),
    );
    if (!Array.isArray(page.messages)) throw unexpected('The mailbox answer has no "messages" array.');
    const messages = page.messages.map((item: unknown) => {
      const message = asRelayedMessage(item);
      if (!message) throw unexpected('A mailbox item lacks a member.');
      return message;
    });
    return { messages, next_cursor: typeof page.next_cursor === 'string' ? page.next_cursor : null };
  }

  /** Verifies the sender's signature end to end, then decrypts: throws EnvelopeError for anything forged or altered. */
  open(message: RelayedMessage): Promise<OpenedMessage> {
    return openMessage(this.identity, message);
  }

  /**
   * Polls one page: every message is verified and decrypted; refused ones are listed apart.
   * Nothing is acknowledged: call `ack()` once the messages are stored.
   */
  async receive(options: { after?: string | undefined; limit?: number | undefined } = {}): Promise<ReceivedPage> {
    const page = await this.fetchMessages(options);
    const messages: OpenedMessage[] = [];
    const rejected: RejectedMessage[] = [];
    for (const message of page.messages) {
      try {
        messages.push(await this.open(message));
      } catch (error) {
        if (!(error instanceof EnvelopeError)) throw error;
        rejected.push({ message, error });
      }
    }
    return { messages, rejected, next_cursor: page.next_cursor };
  }

  /**
   * Polls the whole mailbox: each message is verified, decrypted and handed to `onMessage`, and
   * each page's handled messages are then acknowledged. A message whose handler throws stays
   * in the mailbox (the error propagates); refused messages are returned, unacknowledged.
   */
  async drain(
    onMessage: (message: OpenedMessage) => void | Promise<void>,
    options: { limit?: number } = {},
  ): Promise<DrainResult> {
    let handled = 0;
    let acknowledged = 0;
    const rejected: RejectedMessage[] = [];
    let after: string | undefined;
    do {
      const page = await this.receive({ after, limit: options.limit });
      rejected.push(...page.rejected);
      const done: string[] = [];
      try {
        for (const message of page.messages) {
          await onMessage(message);
          done.push(message.message_id);
        }
      } finally {
        if (done.length > 0) acknowledged += await this.ack(done);
        handled += done.length;
      }
      after = page.next_cursor ?? undefined;
    } while (after !== undefined);
    return { handled, rejected, acknowledged };
  }

  /**
   * The anchoring proof of a message this peer sent or received (`GET /api/v1/messages/{id}/proof`);
   * `409 not_anchored_yet` until its batch is anchored. Check it with `verifyProof`, against the chain.
   */
  async fetchProof(messageId: string): Promise<MessageProof> {
    return this.withBearer((bearer) =>
      this.transport.request<MessageProof>('GET', `/messages/${encodeURIComponent(messageId)}/proof`, { bearer }),
    );
  }

  /** Acknowledges messages over HTTP (`POST /api/v1/messages/ack`), in chunks of 1,000; resolves with how many were newly acknowledged. */
  async ack(messageIds: readonly string[]): Promise<number> {
    let total = 0;
    for (let i = 0; i < messageIds.length; i += 1000) {
      const body = { address: this.address, message_ids: messageIds.slice(i, i + 1000) };
      const answer = await this.withBearer((bearer) =>
        this.transport.request<{ acknowledged?: unknown; consistency_token?: unknown }>('POST', '/messages/ack', {
          body,
          bearer,
        }),
      );
      if (typeof answer.acknowledged !== 'number') throw unexpected('The ack answer has no "acknowledged" count.');
      this.written.remember(answer.consistency_token);
      total += answer.acknowledged;
    }
    return total;
  }

  /**
   * Opens the WebSocket stream: the backlog first, then messages as they arrive, each verified
   * and decrypted. See StreamOptions for handler-style or pull-style (`next()`) reading. With
   * `resume`, the stream starts behind the last message the previous stream of this client
   * received (its `cursor`), so a reconnect does not send again what that stream already had;
   * messages it had but nobody acknowledged stay in the mailbox for `fetchMessages`.
   */
  async openStream(options: StreamOptions & { readonly resume?: boolean } = {}): Promise<MessageStream> {
    const after = options.after ?? (options.resume ? this.lastStream?.cursor : undefined);
    const url = this.transport.webSocketUrl('/stream', {
      address: this.address,
      ...(after === undefined ? {} : { after }),
    });
    const stream = await this.withBearer(async (bearer) =>
      MessageStream.open(url, { headers: this.transport.headers(bearer), ca: this.options.ca }, this.identity, options),
    );
    this.lastStream = stream;
    return stream;
  }

  /**
   * Runs a mailbox request with a bearer token when tokens are on. A 401 may mean the relay
   * dropped the token early (restart, revocation), so it is retried once with a new one.
   */
  private async withBearer<T>(request: (bearer: string | undefined) => Promise<T>): Promise<T> {
    if (!this.tokens) return request(undefined);
    try {
      return await request(await this.tokens.bearer());
    } catch (error) {
      if (!(error instanceof RelayClientError && error.status === 401)) throw error;
      this.tokens.invalidate();
      return request(await this.tokens.bearer());
    }
  }

  private checkAccepted(answer: Accepted): Accepted {
    if (answer.status !== 'accepted' || typeof answer.partition !== 'number' || typeof answer.offset !== 'string') {
      throw unexpected('The relay answered without an accepted message id, partition and offset.');
    }
    this.written.remember(answer.consistency_token);
    return answer;
  }
}

/**
 * The log positions of this client's writes, highest per partition, sent with its reads as a
 * consistency token: whichever node answers, a read shows this client's own registrations, sends
 * and acknowledgements (docs/reference/api.md, "Reading your own writes").
 */
class WrittenPositions {
  private readonly highest = new Map<string, bigint>();

  remember(token: unknown): void {
    if (typeof token !== 'string' || token === '') return;
    for (const entry of token.split(',')) {
      const cut = entry.lastIndexOf(':');
      const offset = /^\d{1,19}$/.test(entry.slice(cut + 1)) ? BigInt(entry.slice(cut + 1)) : undefined;
      if (cut <= 0 || offset === undefined) continue;
      const slot = entry.slice(0, cut);
      if ((this.highest.get(slot) ?? -1n) < offset) {
        // Re-inserted, so the map's order is by latest write and the token keeps the newest.
        this.highest.delete(slot);
        this.highest.set(slot, offset);
      }
    }
  }

  token(): string | undefined {
    if (this.highest.size === 0) return undefined;
    // The relay reads at most 64 positions; a client writes to few partitions, but stay within it.
    return [...this.highest]
      .slice(-64)
      .map(([slot, offset]) => `${slot}:${offset}`)
      .join(',');
  }
}
