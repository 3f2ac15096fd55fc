import express, { type Express } from 'express';
import { notFoundHandler, problemMiddleware } from './problem.js';
import type { RelayConfig } from '../config/config.js';
import type { KafkaAdmin } from '../kafka/client.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Pool } from '../postgres/pool.js';
import type { Redis } from '../redis/client.js';
import { dependencyChecks } from '../observability/health.js';
import { apiRoutes, type ApiDeps } from './api-routes.js';
import { healthRoutes } from './health-routes.js';

/** The process's shared connections the HTTP application uses (app/resources.ts opens them). */
export interface AppResources {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly pool: Pool;
  readonly redis: Redis;
  readonly metrics: Metrics;
  kafkaAdmin(): Promise<KafkaAdmin>;
}

/** The Express application: health and metrics, the v1 API, and problem+json for every error. */
export function createApp(resources: AppResources, api: ApiDeps): Express {
  const { config, pool, redis, metrics, log } = resources;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.httpRequests.observe(
        { route: `${req.baseUrl}${route}`, method: req.method, status: String(res.statusCode) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    });
    next();
  });
  // The API first: nearly every request is for it, and each layer before it is a match to fail.
  app.use('/api/v1', apiRoutes(api));
  app.use(
    healthRoutes(
      dependencyChecks({ kafkaAdmin: () => resources.kafkaAdmin(), registryUrl: config.registry.url, pool, redis }),
      metrics,
    ),
  );
  app.get('/.well-known/jwks.json', async (_req, res) => {
    res.set('Cache-Control', 'max-age=60').json(await api.tokens.jwks());
  });
  app.use(notFoundHandler);
  app.use(problemMiddleware(log));
  return app;
}
