import { Router } from 'express';
import { checkReadiness, type Check } from '../observability/health.js';
import type { Metrics } from '../observability/metrics.js';

/** /healthz (the process answers), /readyz (every dependency answers), /metrics (Prometheus). */
export function healthRoutes(checks: Readonly<Record<string, Check>>, metrics: Metrics): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const readiness = await checkReadiness(checks);
    const down = Object.entries(readiness.checks)
      .filter(([, r]) => r.status === 'down')
      .map(([name]) => name);
    res.status(down.length === 0 ? 200 : 503).json(down.length === 0 ? readiness : { ...readiness, down });
  });
  router.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
