import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from '../observability/logger.js';
import { untilAborted, type Service } from '../lifecycle/service.js';

export interface IngressOptions {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
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
          { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', keepAliveTimeout: 65_000 },
          this.app,
        )
      : createServer({ keepAliveTimeout: 65_000 }, this.app);
    servers.push(main);
    const address = await this.listen(main, this.options.port, this.options.host);
    log.info('ingress listening', { host: address.address, port: address.port, tls: Boolean(tls) });
    if (tls && tls.localHttpPort > 0) {
      const local = createServer({ keepAliveTimeout: 65_000 }, this.app);
      servers.push(local);
      await this.listen(local, tls.localHttpPort, '127.0.0.1');
      log.info('plain HTTP for local tools', { host: '127.0.0.1', port: tls.localHttpPort });
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

  private async listen(server: Server, port: number, host: string): Promise<AddressInfo> {
    this.options.onServer?.(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }
}
