import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from '../observability/logger.js';
import { untilAborted, type Service } from '../lifecycle/service.js';

/** Serves the Express app over HTTP until aborted, then stops accepting and drains connections. */
export class IngressService implements Service {
  readonly name = 'ingress';
  private server: Server | undefined;
  private readonly listening: Promise<AddressInfo>;
  private resolveListening!: (address: AddressInfo) => void;

  constructor(
    private readonly app: Express,
    private readonly options: {
      host: string;
      port: number;
      log: Logger;
      /** Called with the server before it listens (the WebSocket stream attaches here). */
      onServer?: (server: Server) => void;
      /** Awaited before listening: nothing is accepted until the producer can take it. */
      beforeListen?: () => Promise<void>;
    },
  ) {
    this.listening = new Promise((resolve) => (this.resolveListening = resolve));
  }

  /** Resolves with the bound address once the server listens. */
  address(): Promise<AddressInfo> {
    return this.listening;
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.options.beforeListen?.();
    const server = createServer({ keepAliveTimeout: 65_000 }, this.app);
    this.server = server;
    this.options.onServer?.(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    this.options.log.info('ingress listening', { host: address.address, port: address.port });
    this.resolveListening(address);
    await untilAborted(signal);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 5_000).unref();
    });
  }
}
