import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { readServerFrame, type ServerFrame } from '../api/frames.js';
import type { AckAnswer } from '../api/messages.js';
import { openMessage } from './envelope.js';
import { EnvelopeError, RelayClientError, isProblemDocument } from './errors.js';
import type { PeerIdentity } from './identity.js';
import type { OpenedMessage, RelayedMessage } from './types.js';

export interface StreamOptions {
  /**
   * Called with each message once its signature verified and it decrypted, one at a time in
   * arrival order. With `autoAck` the message is acknowledged after this resolves, so a message
   * is only ever acknowledged once the application has it. Without a handler, read messages with
   * `next()` and acknowledge them with `ack()`.
   */
  readonly onMessage?: (message: OpenedMessage) => void | Promise<void>;
  /** A message this client refused (bad signature, not decryptable). It is not acknowledged. */
  readonly onRejected?: (error: EnvelopeError, message: RelayedMessage) => void;
  /** Anything else that went wrong on the open stream: a handler threw, an ack failed, a socket error. */
  readonly onError?: (error: Error) => void;
  /** Acknowledge each message after `onMessage` resolves; default true. Ignored without `onMessage`. */
  readonly autoAck?: boolean;
  /** How long to wait for the upgrade; default 15 s. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Resume behind this cursor (a previous stream's `cursor`): messages at or before it are not
   * sent again on this stream. Unacknowledged ones stay in the mailbox for `GET /messages`.
   */
  readonly after?: string;
}

/** What an acknowledgement did with each id (docs/reference/api.md). */
export type { AckAnswer };

export interface StreamClosed {
  readonly code: number;
  readonly reason: string;
}

type Received = { readonly message: OpenedMessage } | { readonly error: EnvelopeError; readonly raw: RelayedMessage };

interface Waiter {
  resolve(message: OpenedMessage): void;
  reject(error: Error): void;
}

/**
 * An ack the relay could not decide in time (`not_yet_known`: its read model lagged past the read
 * wait) is asked again after these delays.
 */
const ACK_RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];
const MAX_ERROR_BODY = 16 * 1024;

const streamClosed = (detail: string) => new RelayClientError({ status: 0, code: 'stream_closed', detail });

/**
 * An open `GET /api/v1/stream` WebSocket for one identity. Every message frame is verified end to
 * end and decrypted before anyone sees it. Acknowledgements go over the same socket, one at a
 * time, because the relay's `ack_result` frames do not say which `ack` they answer.
 */
export class MessageStream {
  /** Resolves when the socket has closed, for whatever reason. */
  readonly closed: Promise<StreamClosed>;
  private readonly received: Received[] = [];
  private readonly waiters: Waiter[] = [];
  private processing: Promise<void> = Promise.resolve();
  private acking: Promise<unknown> = Promise.resolve();
  private answer: { resolve(answer: AckAnswer): void; reject(error: Error): void } | undefined;
  private isClosed = false;
  private lastCursor: string | undefined;
  /** Set once a message was not handled (its handler threw): the resume cursor stops before it. */
  private cursorHeld = false;
  /** Ids to acknowledge in the next `ack` frame, and how often each was answered `not_yet_known`. */
  private readonly toAck: string[] = [];
  private readonly ackAttempts = new Map<string, number>();
  private acksFlowing = false;

  private constructor(
    private readonly ws: WebSocket,
    private readonly identity: PeerIdentity,
    private readonly options: StreamOptions,
  ) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        const closed = streamClosed(`The stream closed (${code}${reason.length ? ` ${reason.toString()}` : ''}).`);
        this.answer?.reject(closed);
        this.answer = undefined;
        for (const waiter of this.waiters.splice(0)) waiter.reject(closed);
        resolve({ code, reason: reason.toString() });
      });
    });
    // Frames can arrive right after the upgrade (the backlog), so listen before `open` resolves.
    ws.on('message', (data, isBinary) => this.frame((data as Buffer).toString(), isBinary));
  }

  /** Opens the stream; rejects with the relay's problem (as RelayClientError) if the upgrade is refused. */
  static async open(
    url: string,
    connection: { readonly headers: Record<string, string>; readonly ca?: string | Buffer | undefined },
    identity: PeerIdentity,
    options: StreamOptions = {},
  ): Promise<MessageStream> {
    const ws = new WebSocket(url, {
      headers: connection.headers,
      handshakeTimeout: options.handshakeTimeoutMs ?? 15_000,
      ...(connection.ca === undefined ? {} : { ca: connection.ca }),
    });
    const stream = new MessageStream(ws, identity, options);
    await new Promise<void>((resolve, reject) => {
      let state: 'connecting' | 'open' | 'refused' = 'connecting';
      ws.once('open', () => {
        state = 'open';
        resolve();
      });
      // Always listening: an 'error' event without a listener would crash the process.
      ws.on('error', (error) => {
        if (state === 'open') options.onError?.(error);
        else if (state === 'connecting') {
          reject(
            new RelayClientError({
              status: 0,
              code: 'network_error',
              detail: `The stream could not be opened: ${error.message}`,
              cause: error,
            }),
          );
        }
      });
      ws.once('unexpected-response', (_request, response: IncomingMessage) => {
        state = 'refused';
        // Read the refusal before tearing the handshake down: terminating first would lose the body.
        void readRefusal(response).then((error) => {
          reject(error);
          ws.terminate();
        });
      });
    });
    return stream;
  }

  /** The next message, for pull-style reading (no `onMessage`). A refused message rejects with its EnvelopeError. */
  next(timeoutMs = 30_000): Promise<OpenedMessage> {
    const item = this.received.shift();
    if (item && 'message' in item) {
      this.taken(item.message);
      return Promise.resolve(item.message);
    }
    if (item) return Promise.reject(item.error);
    if (this.isClosed) return Promise.reject(streamClosed('The stream is closed.'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`no message arrived on the stream within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * The cursor of the last message the application has taken (its handler returned, or `next()`
   * handed it over), in an unbroken run: open a new stream with `{ after: cursor }` to resume
   * behind it. A message whose handler threw holds it back. Undefined before the first message
   * (or from a relay without cursors).
   */
  get cursor(): string | undefined {
    return this.lastCursor;
  }

  /** Acknowledges messages over the stream; resolves with how many this ack newly acknowledged. */
  async ack(messageIds: readonly string[]): Promise<number> {
    return (await this.acknowledge(messageIds)).acknowledged;
  }

  /** Acknowledges messages over the stream; resolves with what the relay did with each id. */
  acknowledge(messageIds: readonly string[]): Promise<AckAnswer> {
    const run = () =>
      new Promise<AckAnswer>((resolve, reject) => {
        if (this.isClosed || this.ws.readyState !== WebSocket.OPEN) {
          reject(streamClosed('The stream is closed; acknowledge over HTTP instead.'));
          return;
        }
        this.answer = { resolve, reject };
        this.ws.send(JSON.stringify({ type: 'ack', message_ids: messageIds }), (error) => {
          if (error) reject(streamClosed(`The ack could not be sent: ${error.message}`));
        });
      });
    const result = this.acking.then(run, run);
    this.acking = result.catch(() => undefined);
    return result;
  }

  /** Closes the socket normally and waits until it is closed. */
  async close(): Promise<StreamClosed> {
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN)
      this.ws.close(1000, 'client closing');
    return this.closed;
  }

  private frame(text: string, isBinary: boolean): void {
    if (isBinary) return;
    let frame: ServerFrame | undefined;
    try {
      frame = readServerFrame(text, isBinary);
    } catch (error) {
      const detail = `The relay sent a stream frame that breaks the contract: ${(error as Error).message}`;
      const problem = new RelayClientError({ status: 0, code: 'unexpected_response', detail, cause: error });
      // A broken answer to the ack in flight still settles it: later acks queue behind it.
      if (this.answer && answersAck(text)) {
        this.answer.reject(problem);
        this.answer = undefined;
      } else {
        this.options.onError?.(problem);
      }
      return;
    }
    // Frame types added later are not for this client version.
    if (!frame) return;
    switch (frame.type) {
      case 'message': {
        const { type: _type, ...message } = frame;
        // One at a time and in order, while ack answers (below) are handled at once: a handler
        // that awaits its ack must not wait behind itself.
        this.processing = this.processing
          .then(() => this.deliver(message))
          .catch((error: unknown) => this.options.onError?.(error as Error));
        return;
      }
      case 'ack_result': {
        this.answer?.resolve({
          acknowledged: frame.acknowledged ?? 0,
          results: frame.results ?? [],
          consistency_token: frame.consistency_token ?? '',
        });
        this.answer = undefined;
        return;
      }
      case 'error': {
        const error = RelayClientError.fromProblem(frame.problem);
        // The client sends nothing but acks, so an error frame answers the ack in flight.
        if (this.answer) {
          this.answer.reject(error);
          this.answer = undefined;
        } else {
          this.options.onError?.(error);
        }
        return;
      }
    }
  }

  private async deliver(raw: RelayedMessage): Promise<void> {
    let message: OpenedMessage;
    try {
      message = await openMessage(this.identity, raw);
    } catch (error) {
      const refused =
        error instanceof EnvelopeError
          ? error
          : new EnvelopeError('decryption_failed', (error as Error).message, raw.message_id, { cause: error });
      if (this.options.onMessage) {
        if (this.options.onRejected) this.options.onRejected(refused, raw);
        else this.options.onError?.(refused);
      } else {
        this.enqueue({ error: refused, raw });
      }
      return;
    }
    if (!this.options.onMessage) {
      this.enqueue({ message });
      return;
    }
    try {
      await this.options.onMessage(message);
    } catch (error) {
      // Not acknowledged: the relay sends it again with the next connection's backlog.
      this.cursorHeld = true;
      this.options.onError?.(error as Error);
      return;
    }
    this.taken(message);
    if (this.options.autoAck ?? true) this.queueAck(message.message_id);
  }

  /** The application has this message: the resume cursor may move past it. */
  private taken(message: RelayedMessage): void {
    if (!this.cursorHeld && message.cursor !== undefined) this.lastCursor = message.cursor;
  }

  /**
   * Acknowledges in the background, one `ack` frame at a time: ids that arrive while a frame is
   * answered go together in the next one, so a burst of messages costs a few frames, not one each.
   */
  private queueAck(messageId: string): void {
    this.toAck.push(messageId);
    if (!this.acksFlowing) void this.flushAcks();
  }

  private async flushAcks(): Promise<void> {
    this.acksFlowing = true;
    try {
      while (this.toAck.length > 0 && !this.isClosed) {
        const ids = this.toAck.splice(0, 1000);
        try {
          const answer = await this.acknowledge(ids);
          for (const { message_id: id, status } of answer.results) {
            if (status === 'not_yet_known') this.askAgainLater(id);
            else this.ackAttempts.delete(id);
          }
        } catch (error) {
          if (error instanceof RelayClientError && error.code === 'rate_limited') {
            this.toAck.unshift(...ids);
            await new Promise((resolve) => setTimeout(resolve, (error.retryAfter ?? 1) * 1000).unref());
          } else {
            this.options.onError?.(error as Error);
          }
        }
      }
    } finally {
      this.acksFlowing = false;
    }
  }

  /** An ack the relay could not decide yet is sent again after a growing delay, a few times. */
  private askAgainLater(messageId: string): void {
    const attempt = this.ackAttempts.get(messageId) ?? 0;
    const delay = ACK_RETRY_DELAYS_MS[attempt];
    if (delay === undefined || this.isClosed) {
      this.ackAttempts.delete(messageId);
      return;
    }
    this.ackAttempts.set(messageId, attempt + 1);
    setTimeout(() => this.queueAck(messageId), delay).unref();
  }

  private enqueue(item: Received): void {
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.received.push(item);
      return;
    }
    if ('message' in item) {
      this.taken(item.message);
      waiter.resolve(item.message);
    } else waiter.reject(item.error);
  }
}

/** The relay refuses an upgrade with a problem document over plain HTTP; this reads it. */
function readRefusal(response: IncomingMessage): Promise<RelayClientError> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      const status = response.statusCode ?? 0;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      resolve(
        isProblemDocument(parsed)
          ? RelayClientError.fromProblem(
              parsed,
              typeof response.headers['retry-after'] === 'string' ? response.headers['retry-after'] : null,
            )
          : new RelayClientError({
              status,
              code: 'unexpected_response',
              detail: `The stream upgrade was refused with ${status}: ${text.slice(0, 200)}`,
            }),
      );
    };
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_ERROR_BODY) chunks.push(chunk);
    });
    response.on('end', finish);
    response.on('error', finish);
    response.on('close', finish);
  });
}

/** Whether a frame's text names a type that answers an ack (ack_result or error). */
function answersAck(text: string): boolean {
  try {
    const type = (JSON.parse(text) as { type?: unknown } | null)?.type;
    return type === 'ack_result' || type === 'error';
  } catch {
    return false;
  }
}
