import type { CheckResult, Readiness } from '../api/health.js';

export type { CheckResult, Readiness };

export type Check = () => Promise<void>;

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });

/** Runs every check at once, each bounded by `timeoutMs`. */
export async function checkReadiness(checks: Readonly<Record<string, Check>>, timeoutMs = 2000): Promise<Readiness> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      const started = performance.now();
      try {
        await withTimeout(check(), timeoutMs, name);
        return [name, { status: 'up', latency_ms: Math.round(performance.now() - started) }];
      } catch (error) {
        return [
          name,
          { status: 'down', latency_ms: Math.round(performance.now() - started), error: (error as Error).message },
        ];
      }
    }),
  );
  const results = Object.fromEntries(entries);
  return { status: entries.every(([, r]) => r.status === 'up') ? 'ready' : 'not_ready', checks: results };
}

/**
 * The little each dependency check needs of a client, declared here so that observability does
 * not import the adapters (which import its logger and metrics).
 */
export interface DependencyProbes {
  readonly kafkaAdmin: () => Promise<{ describeCluster(): Promise<unknown> }>;
  readonly registryUrl: string;
  readonly pool: { query(sql: string): Promise<unknown> };
  readonly redis: { ping(): Promise<unknown> };
}

/** The four dependencies the relay needs: Kafka, the schema registry, Postgres and Redis. */
export function dependencyChecks(deps: DependencyProbes): Record<string, Check> {
  return {
    kafka: async () => {
      await (await deps.kafkaAdmin()).describeCluster();
    },
    registry: async () => {
      const response = await fetch(`${deps.registryUrl}/subjects`, { signal: AbortSignal.timeout(2000) });
      if (!response.ok) throw new Error(`registry answered ${response.status}`);
    },
    postgres: async () => {
      await deps.pool.query('SELECT 1');
    },
    redis: async () => {
      await deps.redis.ping();
    },
  };
}
