import { ConfigError, loadConfig, VARIABLES } from '../../../src/config/config.js';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config.http.port).toBe(8080);
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.registry.url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(config.postgres.url).toBe('postgres://postgres@127.0.0.1:5432/relay');
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.nodeId).toMatch(/-\d+$/);
  });

  it('reads every variable it declares', () => {
    const config = loadConfig({
      RELAY_HTTP_PORT: '9999',
      RELAY_KAFKA_BROKERS: 'k1:9092, k2:9093',
      RELAY_TOPIC_PREFIX: 'tenant-a.',
      RELAY_SCHEMA_REGISTRY_URL: 'https://registry.example:8443/apis/ccompat/v7/',
      RELAY_DATABASE_SCHEMA: 'relay_read',
      RELAY_NODE_ID: 'ingress-7',
    });
    expect(config.http.port).toBe(9999);
    expect(config.kafka.brokers).toEqual(['k1:9092', 'k2:9093']);
    expect(config.kafka.topicPrefix).toBe('tenant-a.');
    expect(config.registry.url).toBe('https://registry.example:8443/apis/ccompat/v7');
    expect(config.postgres.schema).toBe('relay_read');
    expect(config.nodeId).toBe('ingress-7');
  });

  it('reports every bad variable at once, each with what it must be', () => {
    let error: unknown;
    try {
      loadConfig({ RELAY_KAFKA_BROKERS: 'localhost', RELAY_HTTP_PORT: '80000', RELAY_REDIS_URL: 'http://x' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toContain('RELAY_KAFKA_BROKERS must be host:port[,host:port], not "localhost"');
    expect(problems).toContain('RELAY_HTTP_PORT must be a whole number from 0 to 65535, not "80000"');
    expect(problems.some((p) => p.startsWith('RELAY_REDIS_URL must be a redis: or rediss:// URL'))).toBe(true);
    expect(problems).toHaveLength(3);
  });

  it('refuses a database schema that is not a plain identifier', () => {
    expect(() => loadConfig({ RELAY_DATABASE_SCHEMA: 'x"; drop table peers; --' })).toThrow(ConfigError);
  });

  it('is frozen all the way down', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.kafka.brokers)).toBe(true);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('declares a default that its own parser accepts for every variable', () => {
    for (const [name, spec] of Object.entries(VARIABLES)) {
      expect(() => (spec.parse as (raw: string, name: string) => unknown)(spec.default, name)).not.toThrow();
    }
  });
});
