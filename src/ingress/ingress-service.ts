import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerOptions } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from '../observability/logger.js';
import { untilAborted, type Service } from '../lifecycle/service.js';

/** How long and how much a client may take of a listener (docs/guides/security.md). */
export interface ServerLimits {
  /** A request's headers must arrive within this; otherwise 408 and the connection is closed. */
  readonly headersTimeoutMs: number;
  /** The whole request, headers and body, must arrive within this; otherwise 408. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this; less than headersTimeoutMs. */
  readonly keepAliveTimeoutMs: number;
  /** Open connections per listener, WebSocket streams included; more are closed as they arrive. */
  readonly maxConnections: number;
}

/** Headers a request may carry; the rest are dropped unread (Node's default is 2,000). */
export const MAX_HEADERS_COUNT = 100;

export interface IngressOptions {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  readonly limits: ServerLimits;
  /** PEM files: serve HTTPS and WSS with TLS 1.3 only. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly localHttpPort: number } | undefined;
  /** Called with each server before it listens (the WebSocket stream attaches here). */
  readonly onServer?: (server: Server) => void;
  /** Awaited before listening: nothing is accepted until the producer can take it. */
  readonly beforeListen?: () => Promise<void>;
}

/**
 * Serves the Express app until aborted, then stops accepting and drains connections. With TLS it
 * speaks TLS 1.3 only (a TLS 1.2 client fails the handshake), and may also listen in plain HTTP
 * on 127.0.0.1 for local probes and tools.
 */
export class IngressService implements Service {
  readonly name = 'ingress';
  private readonly listening: Promise<AddressInfo>;
  private resolveListening!: (address: AddressInfo) => void;

  constructor(
    private readonly app: Express,
    private readonly options: IngressOptions,
  ) {
    this.listening = new Promise((resolve) => (this.resolveListening = resolve));
  }

  /** Resolves with the main server's bound address once it listens. */
  address(): Promise<AddressInfo> {
    return this.listening;
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.options.beforeListen?.();
    const { tls, log } = this.options;
    const servers: Server[] = [];
    const main = tls
      ? createTlsServer(
          {
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
            minVersion: 'TLSv1.3',
            maxVersion: 'TLSv1.3',
            ...this.serverOptions(),
          },
          this.app,
        )
      : createServer(this.serverOptions(), this.app);
    servers.push(main);
    const address = await this.listen(main, this.options.port, this.options.host);
    log.info({ host: address.address, port: address.port, tls: Boolean(tls) }, 'ingress listening');
    if (tls && tls.localHttpPort > 0) {
      const local = createServer(this.serverOptions(), this.app);
      servers.push(local);
      await this.listen(local, tls.localHttpPort, '127.0.0.1');
      log.info({ host: '127.0.0.1', port: tls.localHttpPort }, 'plain HTTP for local tools');
    }
    this.resolveListening(address);
    await untilAborted(signal);
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
            setTimeout(() => server.closeAllConnections(), 5_000).unref();
          }),
      ),
    );
  }

  private serverOptions(): ServerOptions {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.options.limits;
    return {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      keepAliveTimeout: keepAliveTimeoutMs,
      // Node checks the two timeouts above only this often (30 s by default), so a slow client
      // would otherwise keep its connection up to 30 s past them.
      connectionsCheckingInterval: Math.min(1_000, headersTimeoutMs),
    };
  }

  private async listen(server: Server, port: number, host: string): Promise<AddressInfo> {
    server.maxHeadersCount = MAX_HEADERS_COUNT;
    server.maxConnections = this.options.limits.maxConnections;
    this.options.onServer?.(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }
}
