import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError } from '../errors/app-error.js';
import { problemOf, toAppError } from '../errors/problem.js';
import type { EventPublisher } from '../kafka/event-publisher.js';
import { untilAborted, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { Redis } from '../presence/redis.js';
import type { MessageView } from '../routing/stream-message.js';
import type { MailboxReader } from './mailbox-reader.js';
import type { MessageRelay } from './message-relay.js';
import { addressAt, objectAt, arrayAt } from './validation.js';
import { MAX_ACK_IDS } from './message-relay.js';

export const STREAM_PATH = '/api/v1/stream';
const BACKLOG_PAGE = 500;
/** A second backlog read after connecting covers messages projected while the first one ran. */
const CATCH_UP_DELAY_MS = 1500;
const MAX_REMEMBERED_IDS = 10_000;

/**
 * Decides whether an upgrade request may open `address`'s stream (the security layer's check).
 * It runs again on every heartbeat with the same headers and URL, so a stream whose key was
 * revoked or whose token expired is closed.
 */
export type StreamGuard = (req: Pick<IncomingMessage, 'headers'>, address: string, url: URL) => Promise<void>;

interface Connection {
  readonly ws: WebSocket;
  readonly address: string;
  /** Ids already written to this socket, so backlog and live pushes never repeat a message. */
  sent: Set<string>;
  alive: boolean;
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
  readonly ttlSeconds: number;
  readonly authorize: StreamGuard;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/**
 * The WebSocket stream at /api/v1/stream?address=A. On open the peer is online (presence in
 * Redis at once, and a PeerPresenceChanged event) and receives its backlog; then every message
 * the router pushes to this node's channel for it; `{"type":"ack","message_ids":[...]}` frames
 * acknowledge. Sockets are pinged and the online score refreshed every third of the presence
 * TTL, so a node that dies stops vouching for its peers within one TTL.
 */
export class StreamHub implements Service {
  readonly name = 'stream';
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly connections = new Map<string, Set<Connection>>();

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
      await subscriber.quit().catch(() => undefined);
      const all = [...this.connections.values()].flatMap((set) => [...set]);
      for (const connection of all) connection.ws.close(1001, 'server shutting down');
      await Promise.allSettled([...this.connections.keys()].map((address) => this.wentOffline(address)));
      this.connections.clear();
      log.info('streams closed', { count: all.length });
    }
  }

  /** Addresses with an open stream on this node. */
  connectedAddresses(): string[] {
    return [...this.connections.keys()];
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== STREAM_PATH) throw new AppError('not_found', `No WebSocket endpoint at ${url.pathname}; use ${STREAM_PATH}.`);
    const address = addressAt(Object.fromEntries(url.searchParams), 'address');
    await this.deps.authorize(req, address, url);
    const credentials = { headers: { authorization: req.headers.authorization, 'x-api-key': req.headers['x-api-key'] } };
    const recheck = () => this.deps.authorize(credentials, address, url);
    this.wss.handleUpgrade(req, socket, head, (ws) => void this.opened(ws, address, recheck));
  }

  private async opened(ws: WebSocket, address: string, recheck: () => Promise<void>): Promise<void> {
    const connection: Connection = { ws, address, sent: new Set(), alive: true, recheck };
    const first = !this.connections.has(address);
    const set = this.connections.get(address) ?? new Set();
    set.add(connection);
    this.connections.set(address, set);
    this.deps.metrics?.openSockets.inc();

    ws.on('pong', () => (connection.alive = true));
    ws.on('message', (data, isBinary) => void this.received(connection, (data as Buffer).toString(), isBinary));
    ws.on('error', (error) => this.deps.log.debug('stream socket error', { address, error: error.message }));
    ws.on('close', () => void this.closed(connection));
    try {
      // Route pushes here before reading the backlog, so nothing falls between the two.
      await this.deps.presence.connected(address, this.deps.nodeId, Date.now());
      if (first) await this.presenceEvent(address, true);
      await this.sendBacklog(connection);
      setTimeout(() => {
        if (ws.readyState === ws.OPEN) void this.sendBacklog(connection).catch(() => undefined);
      }, CATCH_UP_DELAY_MS).unref();
    } catch (error) {
      this.deps.log.warn('stream set-up failed', { address, error: (error as Error).message });
      ws.close(1011, 'the relay could not open the stream; reconnect');
    }
  }

  private async sendBacklog(connection: Connection): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.deps.mailbox.undelivered(connection.address, cursor, BACKLOG_PAGE);
      for (const message of page.messages) this.write(connection, message, 'backlog');
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined && connection.ws.readyState === connection.ws.OPEN);
  }

  private push(payload: string): void {
    let messages: MessageView[];
    try {
      messages = JSON.parse(payload) as MessageView[];
    } catch {
      return;
    }
    for (const message of messages) {
      for (const connection of this.connections.get(message.to_address) ?? []) this.write(connection, message, 'live');
    }
  }

  private write(connection: Connection, message: MessageView, source: 'backlog' | 'live'): void {
    if (connection.sent.has(message.message_id) || connection.ws.readyState !== connection.ws.OPEN) return;
    if (connection.sent.size >= MAX_REMEMBERED_IDS) connection.sent = new Set();
    connection.sent.add(message.message_id);
    connection.ws.send(JSON.stringify({ type: 'message', ...message }));
    this.deps.metrics?.pushes.inc({ source });
  }

  private async received(connection: Connection, text: string, isBinary: boolean): Promise<void> {
    try {
      if (isBinary) throw new AppError('unsupported_media_type', 'Stream frames are JSON text.');
      let frame: unknown;
      try {
        frame = JSON.parse(text);
      } catch {
        throw new AppError('malformed_json', 'The frame is not valid JSON.');
      }
      const fields = objectAt(frame, 'frame');
      if (fields['type'] !== 'ack') throw new AppError('invalid_request', 'Frames have "type": "ack".', { extensions: { field: 'type' } });
      const ids = arrayAt(fields, 'message_ids', MAX_ACK_IDS);
      const acknowledged = await this.deps.relay.acknowledge(connection.address, ids, 'stream');
      connection.ws.send(JSON.stringify({ type: 'ack_result', acknowledged }));
    } catch (error) {
      connection.ws.send(JSON.stringify({ type: 'error', problem: problemOf(toAppError(error)) }));
    }
  }

  private async closed(connection: Connection): Promise<void> {
    const set = this.connections.get(connection.address);
    if (!set?.delete(connection)) return;
    this.deps.metrics?.openSockets.dec();
    if (set.size > 0) return;
    this.connections.delete(connection.address);
    await this.wentOffline(connection.address).catch((error: unknown) =>
      this.deps.log.warn('could not record going offline', { address: connection.address, error: (error as Error).message }),
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
      .catch((error: unknown) => this.deps.log.warn('presence heartbeat failed', { error: (error as Error).message }));
  }
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
      log.debug('could not re-check a stream', { address: connection.address, error: problem.message });
      return;
    }
    log.info('closing a stream that is no longer authorized', { address: connection.address, code: problem.code });
    connection.ws.close(4000 + problem.status, problem.code);
  }
}

/** Answers a refused upgrade with a problem document over plain HTTP, then closes. */
function refuse(socket: Duplex, error: AppError): void {
  const body = JSON.stringify(problemOf(error));
  socket.end(
    `HTTP/1.1 ${error.status} ${error.code}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
