import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { untilAborted, type Service } from '../lifecycle/service.js';
import { checkReadiness, type Check } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * /metrics, /healthz and /readyz on a port of their own (RELAY_METRICS_PORT), answering the
 * same as the ingress's: the consuming roles have no HTTP server, yet Prometheus must scrape
 * them and an orchestrator must probe them.
 */
export class MetricsServer implements Service {
  readonly name = 'metrics-server';
  private readonly server: Server;
  private readonly listening: Promise<AddressInfo>;
  private markListening!: (address: AddressInfo) => void;

  constructor(
    private readonly options: { readonly host: string; readonly port: number },
    metrics: Metrics,
    checks: Readonly<Record<string, Check>>,
    private readonly log: Logger,
  ) {
    this.listening = new Promise((resolve) => (this.markListening = resolve));
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const reply = (status: number, type: string, body: string) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain', 'method not allowed\n');
      switch (path) {
        case '/metrics':
          metrics.registry.metrics().then(
            (text) => reply(200, metrics.registry.contentType, text),
            (error: unknown) => reply(500, 'text/plain', `${(error as Error).message}\n`),
          );
          return;
        case '/healthz':
          return reply(200, 'application/json', JSON.stringify({ status: 'ok' }));
        case '/readyz':
          void checkReadiness(checks).then((readiness) => {
            const down = Object.entries(readiness.checks)
              .filter(([, r]) => r.status === 'down')
              .map(([name]) => name);
            reply(
              down.length === 0 ? 200 : 503,
              'application/json',
              JSON.stringify(down.length === 0 ? readiness : { ...readiness, down }),
            );
          });
          return;
        default:
          return reply(404, 'text/plain', 'not found\n');
      }
    });
  }

  /** Where the listener is, once it listens. */
  address(): Promise<AddressInfo> {
    return this.listening;
  }

  async run(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.log.info({ host: address.address, port: address.port }, 'metrics listening');
    this.markListening(address);
    await untilAborted(signal);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
