import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError } from '../errors/app-error.js';
import { problemOf, toAppError } from './problem.js';
import type { EventPublisher } from '../kafka/event-publisher.js';
import { sleep, untilAborted, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { Redis } from '../redis/client.js';
import { decodeCursor } from '../api/cursors.js';
import { readClientFrame, type AckResultFrame, type ErrorFrame, type MessageFrame } from '../api/frames.js';
import type { MessageView } from '../api/messages.js';
import { Address } from '../api/primitives.js';
import { validator } from '../api/validate.js';
import type { MailboxReader } from './mailbox-reader.js';
import type { MessageRelay } from './message-relay.js';
import type { ReadConsistency } from './read-consistency.js';
import { optionalParam } from './validation.js';

const parseAddress = validator(Address, 'address');
/** Frames as the server writes them, typed by the contract. */
const frame = (value: MessageFrame | AckResultFrame | ErrorFrame): string => JSON.stringify(value);

export const STREAM_PATH = '/api/v1/stream';
const BACKLOG_PAGE = 500;
/** Past the read wait, how long each further wait for the read model to catch up with a stream's partition is. */
const CATCH_UP_WAIT_MS = 10_000;
const MAX_REMEMBERED_IDS = 10_000;
/** Bytes queued in a socket above which nothing more is written to it until it drains. */
const HIGH_WATER_BYTES = 1024 * 1024;
const DRAIN_CHECK_MS = 20;
/** How long a closing stream's peer has to answer the close frame when the node stops. */
const CLOSE_WAIT_MS = 1000;

/**
 * Decides whether an upgrade request may open `address`'s stream (the security layer's check).
 * It runs again on every heartbeat with the same headers and URL, so a stream whose key was
 * revoked or whose token expired is closed.
 */
export type StreamGuard = (req: Pick<IncomingMessage, 'headers'>, address: string, url: URL) => Promise<void>;

interface Connection {
  readonly ws: WebSocket;
  readonly address: string;
  /** Ids already written to this socket (the most recent ones), so no message is written twice. */
  readonly sent: Set<string>;
  /** Resume point: messages at or before this log position are not sent. */
  readonly after: { readonly cursor: string; readonly position: [number, string] } | undefined;
  /** Messages waiting for the socket to drain. */
  readonly waiting: MessageView[];
  /**
   * Live pushes that arrived before the first backlog pass was written; they follow it, so the
   * stream goes out in log order (the partition is projected in order, so what the backlog lacks
   * is newer than all it has). Undefined once the backlog is out.
   */
  held: MessageView[] | undefined;
  draining: NodeJS.Timeout | undefined;
  alive: boolean;
  /** Frame budget: tokens left, refilled at the frame rate, and frames refused this second. */
  frames: { tokens: number; at: number; refused: number; second: number };
  /** The upgrade's check, run again on each heartbeat. */
  readonly recheck: () => Promise<void>;
}

export interface StreamDeps {
  readonly nodeId: string;
  readonly presence: PresenceStore;
  readonly subscriber: Redis;
  readonly relay: MessageRelay;
  readonly mailbox: MailboxReader;
  readonly events: EventPublisher;
  readonly consistency: ReadConsistency;
  readonly ttlSeconds: number;
  readonly authorize: StreamGuard;
  readonly limits: { readonly perAddress: number; readonly framesPerSecond: number; readonly queueMax: number };
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/**
 * The WebSocket stream at /api/v1/stream?address=A[&after=CURSOR]. On open the peer is online
 * (presence in Redis at once, and a PeerPresenceChanged event) and receives its backlog; then
 * every message the router pushes to this node's channel for it; `{"type":"ack","message_ids":[...]}`
 * frames acknowledge. Sockets are pinged and the online score refreshed every third of the
 * presence TTL, so a node that dies stops vouching for its peers within one TTL.
 *
 * No message falls between backlog and live pushes: pushes are routed here before the partition's
 * end is read, and the backlog is read once the read model has applied the partition up to that
 * end; every later message is pushed. Each message is written once per stream, with its cursor.
 */
export class StreamHub implements Service {
  readonly name = 'stream';
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly connections = new Map<string, Set<Connection>>();
  /** Set once the node is stopping: no stream opens after its streams were closed. */
  private stopping = false;

  constructor(private readonly deps: StreamDeps) {}

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrade(req, socket, head).catch((error: unknown) => refuse(socket, toAppError(error)));
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    const { subscriber, presence, nodeId, log } = this.deps;
    const channel = presence.nodeChannel(nodeId);
    subscriber.on('message', (from: string, payload: string) => {
      if (from === channel) this.push(payload);
    });
    await subscriber.subscribe(channel);
    const beat = setInterval(() => void this.heartbeat(), Math.max(1000, (this.deps.ttlSeconds * 1000) / 3));
    try {
      await untilAborted(signal);
    } finally {
      clearInterval(beat);
      this.stopping = true;
      await subscriber.quit().catch(() => undefined);
      // Forget the streams before closing them, so their close events do not announce them twice.
      const open = [...this.connections];
      this.connections.clear();
      this.deps.metrics?.onlinePeers.dec(open.length);
      let count = 0;
      for (const [, set] of open) {
        for (const connection of set) {
          clearTimeout(connection.draining);
          connection.ws.close(1001, 'server shutting down');
          // A peer that does not answer the close (a phone gone out of range) would hold the
          // listener open for ws's 30 s: its socket is dropped after a second.
          setTimeout(() => connection.ws.terminate(), CLOSE_WAIT_MS).unref();
          this.deps.metrics?.openSockets.dec();
          count++;
        }
      }
      await Promise.allSettled(open.map(([address]) => this.wentOffline(address)));
      log.info({ count }, 'streams closed');
    }
  }

  /** Addresses with an open stream on this node. */
  connectedAddresses(): string[] {
    return [...this.connections.keys()];
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== STREAM_PATH)
      throw new AppError('not_found', `No WebSocket endpoint at ${url.pathname}; use ${STREAM_PATH}.`);
    if (this.stopping)
      throw new AppError(
        'overloaded',
        'This node is shutting down; connect again (another node will take the stream).',
        { extensions: { retry_after: 1 } },
      );
    const params = Object.fromEntries(url.searchParams);
    const address = parseAddress(params['address']);
    const cursor = optionalParam(params, 'after');
    const after = cursor === undefined ? undefined : { cursor, position: decodeCursor(cursor) };
    await this.deps.authorize(req, address, url);
    if ((this.connections.get(address)?.size ?? 0) >= this.deps.limits.perAddress) {
      throw new AppError(
        'too_many_streams',
        `${address} already has ${this.deps.limits.perAddress} streams open on this node; close one first.`,
        {
          extensions: { retry_after: 1 },
        },
      );
    }
    const credentials = {
      headers: { authorization: req.headers.authorization, 'x-api-key': req.headers['x-api-key'] },
    };
    const recheck = () => this.deps.authorize(credentials, address, url);
    this.wss.handleUpgrade(req, socket, head, (ws) => void this.opened(ws, address, recheck, after));
  }

  private async opened(
    ws: WebSocket,
    address: string,
    recheck: () => Promise<void>,
    after: Connection['after'],
  ): Promise<void> {
    if (this.stopping) {
      // Its upgrade was checked before the streams were closed, and finished after.
      ws.close(1001, 'server shutting down');
      return;
    }
    const rate = this.deps.limits.framesPerSecond;
    const connection: Connection = {
      ws,
      address,
      sent: new Set(),
      after,
      waiting: [],
      held: [],
      draining: undefined,
      alive: true,
      frames: { tokens: rate, at: Date.now(), refused: 0, second: 0 },
      recheck,
    };
    const first = !this.connections.has(address);
    const set = this.connections.get(address) ?? new Set();
    set.add(connection);
    this.connections.set(address, set);
    this.deps.metrics?.openSockets.inc();
    if (first) this.deps.metrics?.onlinePeers.inc();

    ws.on('pong', () => (connection.alive = true));
    ws.on('message', (data, isBinary) => void this.received(connection, (data as Buffer).toString(), isBinary));
    ws.on('error', (error) => this.deps.log.debug({ address, err: error }, 'stream socket error'));
    ws.on('close', () => void this.closed(connection));
    try {
      // Route pushes here before reading where the partition ends: every message stored later
      // is pushed, and every one stored earlier is in the read model once it reaches that end.
      await this.deps.presence.connected(address, this.deps.nodeId, Date.now());
      if (first) await this.presenceEvent(address, true);
      let caughtUp = await this.deps.consistency.awaitLogEnd('mailbox', address);
      let cursor = await this.sendBacklog(connection, connection.after?.cursor);
      const held = connection.held ?? [];
      connection.held = undefined;
      for (const message of held) this.write(connection, message, 'live');
      // The read model lags more than the read wait: send what it has, then the rest once it
      // catches up, from where the last pass ended (the partition is projected in order).
      while (!caughtUp && isOpen(connection)) {
        caughtUp = await this.deps.consistency.awaitLogEnd('mailbox', address, CATCH_UP_WAIT_MS);
        cursor = await this.sendBacklog(connection, cursor);
      }
    } catch (error) {
      this.deps.log.warn({ address, err: error }, 'stream set-up failed');
      ws.close(1011, 'the relay could not open the stream; reconnect');
    }
  }

  /** Sends the undelivered messages after `from`; resolves with the cursor of the last one read. */
  private async sendBacklog(connection: Connection, from: string | undefined): Promise<string | undefined> {
    let cursor = from;
    let last = from;
    do {
      // Read the next page only once the socket has taken most of the last one.
      while (isOpen(connection) && connection.waiting.length >= Math.min(BACKLOG_PAGE, this.deps.limits.queueMax))
        await sleep(DRAIN_CHECK_MS);
      if (!isOpen(connection)) return last;
      const page = await this.deps.mailbox.undelivered(connection.address, cursor, BACKLOG_PAGE);
      for (const message of page.messages) this.write(connection, message, 'backlog');
      last = page.messages[page.messages.length - 1]?.cursor ?? last;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
    return last;
  }

  private push(payload: string): void {
    let messages: MessageView[];
    try {
      messages = JSON.parse(payload) as MessageView[];
    } catch {
      return;
    }
    for (const message of messages) {
      for (const connection of this.connections.get(message.to_address) ?? []) {
        if (connection.after && !isAfter(message.cursor, connection.after.position)) continue;
        this.write(connection, message, 'live');
      }
    }
  }

  /** Queues a message for the socket unless this stream has had it; writes what the socket can take. */
  private write(connection: Connection, message: MessageView, source: 'backlog' | 'live'): void {
    if (source === 'live' && connection.held) {
      connection.held.push(message);
      if (connection.held.length > this.deps.limits.queueMax) this.tooSlow(connection);
      return;
    }
    if (connection.sent.has(message.message_id) || !isOpen(connection)) return;
    if (connection.sent.size >= MAX_REMEMBERED_IDS) {
      // Forget the oldest tenth: a Set iterates in insertion order.
      let drop = MAX_REMEMBERED_IDS / 10;
      for (const id of connection.sent) if (drop-- > 0) connection.sent.delete(id);
    }
    connection.sent.add(message.message_id);
    connection.waiting.push(message);
    this.deps.metrics?.pushes.inc({ source });
    this.deps.metrics?.deliveryDelay.observe(
      { source },
      Math.max(0, Date.now() - Date.parse(message.accepted_at)) / 1000,
    );
    if (source === 'live' && connection.waiting.length > this.deps.limits.queueMax) return this.tooSlow(connection);
    this.flush(connection);
  }

  /**
   * A socket this far behind would hold messages in memory without bound: it is closed, and the
   * client resumes from its last cursor on a new stream; nothing is lost (nothing was acknowledged).
   */
  private tooSlow(connection: Connection): void {
    this.deps.log.info(
      { address: connection.address, waiting: connection.waiting.length },
      'closing a stream that does not keep up',
    );
    connection.waiting.length = 0;
    connection.held = undefined;
    connection.ws.close(1013, 'the stream fell behind; reconnect to resume');
  }

  /** Writes waiting messages while the socket's buffer is below the high-water mark. */
  private flush(connection: Connection): void {
    while (connection.waiting.length > 0 && isOpen(connection) && connection.ws.bufferedAmount < HIGH_WATER_BYTES) {
      const message = connection.waiting.shift() as MessageView;
      connection.ws.send(frame({ type: 'message', ...message }));
    }
    if (connection.waiting.length > 0 && isOpen(connection) && !connection.draining) {
      connection.draining = setTimeout(() => {
        connection.draining = undefined;
        this.flush(connection);
      }, DRAIN_CHECK_MS);
    }
  }

  private async received(connection: Connection, text: string, isBinary: boolean): Promise<void> {
    if (!this.takeFrame(connection)) return;
    try {
      const ack = readClientFrame(text, isBinary);
      const answer = await this.deps.relay.acknowledge(connection.address, ack.message_ids, 'stream');
      connection.ws.send(frame({ type: 'ack_result', ...answer }));
    } catch (error) {
      connection.ws.send(frame({ type: 'error', problem: problemOf(toAppError(error)) }));
    }
  }

  /**
   * Takes one frame from the stream's budget (a token bucket at the frame rate). A frame over it
   * is answered with `rate_limited`; a stream that sends twice the rate within a second is closed.
   */
  private takeFrame(connection: Connection): boolean {
    const rate = this.deps.limits.framesPerSecond;
    const frames = connection.frames;
    const now = Date.now();
    frames.tokens = Math.min(rate, frames.tokens + ((now - frames.at) / 1000) * rate);
    frames.at = now;
    if (frames.tokens >= 1) {
      frames.tokens -= 1;
      return true;
    }
    const second = Math.floor(now / 1000);
    if (frames.second !== second) {
      frames.second = second;
      frames.refused = 0;
    }
    if (++frames.refused > rate) {
      connection.ws.close(4429, 'rate_limited');
      return false;
    }
    const problem = new AppError(
      'rate_limited',
      `Streams may send ${rate} frames per second; wait before sending more.`,
      { extensions: { retry_after: 1 } },
    );
    connection.ws.send(frame({ type: 'error', problem: problemOf(problem) }));
    return false;
  }

  private async closed(connection: Connection): Promise<void> {
    clearTimeout(connection.draining);
    connection.waiting.length = 0;
    const set = this.connections.get(connection.address);
    if (!set?.delete(connection)) return;
    this.deps.metrics?.openSockets.dec();
    if (set.size > 0) return;
    this.connections.delete(connection.address);
    this.deps.metrics?.onlinePeers.dec();
    await this.wentOffline(connection.address).catch((error: unknown) =>
      this.deps.log.warn({ address: connection.address, err: error }, 'could not record going offline'),
    );
  }

  private async wentOffline(address: string): Promise<void> {
    await this.deps.presence.disconnected(address, this.deps.nodeId, Date.now());
    await this.presenceEvent(address, false);
  }

  private async presenceEvent(address: string, online: boolean): Promise<void> {
    await this.deps.events.publishOne({
      type: 'PeerPresenceChanged',
      data: { event_id: randomUUID(), occurred_at: Date.now(), address, online, node_id: this.deps.nodeId },
    });
  }

  private async heartbeat(): Promise<void> {
    const open: Connection[] = [];
    for (const set of this.connections.values()) {
      for (const connection of set) {
        if (!connection.alive) {
          connection.ws.terminate();
          continue;
        }
        connection.alive = false;
        connection.ws.ping();
        open.push(connection);
      }
    }
    await Promise.all(open.map((connection) => reauthorizeOrClose(connection, this.deps.log)));
    await this.deps.presence
      .heartbeat(this.connectedAddresses(), Date.now(), this.deps.nodeId)
      .catch((error: unknown) => this.deps.log.warn({ err: error }, 'presence heartbeat failed'));
  }
}

const isOpen = (connection: Connection): boolean => connection.ws.readyState === connection.ws.OPEN;

/** Whether a message's cursor lies after a log position. */
function isAfter(cursor: string, [partition, offset]: [number, string]): boolean {
  const [p, o] = decodeCursor(cursor);
  return p !== partition ? p > partition : BigInt(o) > BigInt(offset);
}

/**
 * A stream whose API key was revoked or whose token expired (or whatever else its upgrade would
 * now be refused for) is closed with 4000 + the HTTP status and the problem code as the reason.
 * A check that cannot be made (Postgres down) leaves the stream open.
 */
async function reauthorizeOrClose(connection: Connection, log: Logger): Promise<void> {
  try {
    await connection.recheck();
  } catch (error) {
    const problem = toAppError(error);
    if (problem.status !== 401 && problem.status !== 403) {
      log.debug({ address: connection.address, err: problem }, 'could not re-check a stream');
      return;
    }
    log.info({ address: connection.address, code: problem.code }, 'closing a stream that is no longer authorized');
    connection.ws.close(4000 + problem.status, problem.code);
  }
}

/** Answers a refused upgrade with a problem document over plain HTTP, then closes. */
function refuse(socket: Duplex, error: AppError): void {
  const problem = problemOf(error);
  const body = JSON.stringify(problem);
  const retryAfter = typeof problem['retry_after'] === 'number' ? `Retry-After: ${problem['retry_after']}\r\n` : '';
  socket.end(
    `HTTP/1.1 ${error.status} ${error.code}\r\nContent-Type: application/problem+json\r\n${retryAfter}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
