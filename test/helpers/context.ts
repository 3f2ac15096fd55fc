import { randomBytes } from 'node:crypto';
import { loadConfig, type RelayConfig } from '../../src/config/config.js';
import { openResources, type Resources } from '../../src/app/resources.js';
import { sleep } from '../../src/lifecycle/service.js';
import type { Pool } from '../../src/postgres/pool.js';
import { prepareDependencies } from '../../src/app/setup.js';
import { createLogger } from '../../src/observability/logger.js';

/**
 * A configuration of its own for one test file: a random topic prefix, consumer group prefix,
 * Postgres schema and Redis key prefix, so files run in parallel and reruns never see old data.
 * Connection settings come from the environment (RELAY_*), as for the relay itself.
 */
export function testEnv(label: string, overrides: Record<string, string> = {}): Record<string, string> {
  const id = `${label.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_${randomBytes(4).toString('hex')}`;
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  return {
    ...inherited,
    RELAY_TOPIC_PREFIX: `test.${id}.`,
    RELAY_CONSUMER_GROUP_PREFIX: `test.${id}`,
    RELAY_DATABASE_SCHEMA: `t_${id}`.slice(0, 63),
    RELAY_REDIS_PREFIX: `test:${id}:`,
    RELAY_NODE_ID: `node-${id}`,
    RELAY_HTTP_HOST: '127.0.0.1',
    RELAY_HTTP_PORT: '0',
    RELAY_LOG_LEVEL: process.env['RELAY_LOG_LEVEL'] ?? 'warn',
    // Most files test the relay's behaviour, not its gate; the security tests turn it on.
    RELAY_AUTH: 'off',
    ...overrides,
  };
}

export function testConfig(label: string, overrides: Record<string, string> = {}): RelayConfig {
  return loadConfig(testEnv(label, overrides));
}

export interface TestContext extends Resources {
  /** The environment that configures a relay process to use this context's topics, schema and keys. */
  readonly env: Readonly<Record<string, string>>;
  /** Deletes what this file created: topics, the Postgres schema, the Redis keys. */
  cleanup(): Promise<void>;
}

/** Resources for one test file, with topics created, schemas registered and the schema migrated. */
export async function openTestContext(label: string, overrides: Record<string, string> = {}): Promise<TestContext> {
  const env = testEnv(label, overrides);
  const config = loadConfig(env);
  const resources = openResources(config, createLogger(config.logLevel, { test: label }));
  await prepareDependencies(resources);
  return {
    ...resources,
    env,
    async cleanup() {
      const admin = resources.kafka.admin();
      await admin.connect();
      const mine = (await admin.listTopics()).filter((t) => t.startsWith(config.kafka.topicPrefix));
      if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
      await admin.disconnect();
      await resources.pool.query(`DROP SCHEMA IF EXISTS "${config.postgres.schema}" CASCADE`);
      const keys = await resources.redis.keys(`${config.redis.keyPrefix}*`);
      if (keys.length > 0) await resources.redis.del(...keys);
      await resources.close();
    },
  };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever the probe last threw; String() gives "Name: message" for an Error
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Waits until every one of these message ids has its row in the read model. */
export const messagesProjected = (
  pool: Pool,
  ids: readonly string[],
  timeoutMs = 15_000,
  what = 'the messages projected',
) =>
  eventually(
    async () => {
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::uuid[])',
        [ids],
      );
      return rows[0]?.n === ids.length ? true : undefined;
    },
    timeoutMs,
    what,
  );
