/**
 * The relay's environment for one benchmark run: this process's environment, then topics,
 * consumer groups, schema, Redis prefix and node id of the run's own (like the tests' testEnv),
 * the ingress on 127.0.0.1:`port`, and `overrides` last.
 */
export function runEnv(
  label: string,
  id: string,
  port: number,
  overrides: Record<string, string>,
): Record<string, string> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  return {
    ...inherited,
    RELAY_TOPIC_PREFIX: `${label}.${id}.`,
    RELAY_CONSUMER_GROUP_PREFIX: `${label}.${id}`,
    RELAY_DATABASE_SCHEMA: `${label.slice(0, 1)}_${id}`,
    RELAY_REDIS_PREFIX: `${label}:${id}:`,
    RELAY_NODE_ID: `${label}-${id}`,
    RELAY_HTTP_HOST: '127.0.0.1',
    RELAY_HTTP_PORT: String(port),
    RELAY_LOG_LEVEL: 'warn',
    ...overrides,
  };
}
