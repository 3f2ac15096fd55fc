import type { Topics } from '../events/topics.js';
import type { Service } from '../lifecycle/service.js';
import type { Resources } from './resources.js';
import { ConsumerLagMonitor, type WatchedGroup } from '../kafka/consumer-lag.js';
import { dependencyChecks } from '../observability/health.js';
import { MetricsServer } from './metrics-server.js';

/** The topics each consuming role reads (as src/app/roles.ts subscribes them), for its lag. */
const CONSUMED: Readonly<Record<string, (topics: Topics) => readonly string[]>> = {
  projector: (t) => [t.mailbox, t.peers, t.anchors],
  presence: (t) => [t.peers],
  router: (t) => [t.mailbox],
  anchor: (t) => [t.mailbox],
};

/** The consumer groups a role runs: `all` runs every one (anchor only when anchoring is configured). */
export function watchedGroups(role: string, resources: Pick<Resources, 'config' | 'topics'>): WatchedGroup[] {
  const { config, topics } = resources;
  const roles = role === 'all' ? ['projector', 'presence', 'router', ...(config.anchor ? ['anchor'] : [])] : [role];
  return roles.flatMap((consumer) => {
    const consumed = CONSUMED[consumer];
    return consumed ? [{ consumer, groupId: `${config.kafka.groupPrefix}.${consumer}`, topics: consumed(topics) }] : [];
  });
}

/**
 * What every role runs beside its own services so that it can be watched: readiness and, on the
 * ingress, certificate expiry as metrics; the lag of the consumer groups it runs; and, with
 * RELAY_METRICS_PORT, a listener for /metrics, /healthz and /readyz.
 */
export function observabilityServices(role: string, resources: Resources): Service[] {
  const { config, metrics, log } = resources;
  const checks = dependencyChecks({
    kafkaAdmin: () => resources.kafkaAdmin(),
    registryUrl: config.registry.url,
    pool: resources.pool,
    redis: resources.redis,
  });
  metrics.observeReadiness(checks);
  if (config.tls && (role === 'ingress' || role === 'all')) metrics.observeCertificate(config.tls.certFile);
  const services: Service[] = [];
  const groups = watchedGroups(role, resources);
  if (groups.length > 0)
    services.push(
      new ConsumerLagMonitor(() => resources.kafkaAdmin(), groups, metrics, log.child({ service: 'consumer-lag' })),
    );
  if (config.metricsPort > 0)
    services.push(
      new MetricsServer(
        { host: config.http.host, port: config.metricsPort },
        metrics,
        checks,
        log.child({ service: 'metrics' }),
      ),
    );
  return services;
}
