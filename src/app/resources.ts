import type { RelayConfig } from '../config/config.js';
import { EventCodec } from '../events/codec.js';
import { topicNames, type Topics } from '../events/topics.js';
import { createKafka, type KafkaAdmin, type KafkaClient } from '../kafka/client.js';
import { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { createPool, type Pool } from '../postgres/pool.js';
import { createRedis, type Redis } from '../redis/client.js';

/** The connections every role shares, opened once per process and closed once at the end. */
export interface Resources {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly topics: Topics;
  readonly kafka: KafkaClient;
  readonly codec: EventCodec;
  readonly pool: Pool;
  readonly redis: Redis;
  readonly metrics: Metrics;
  /** One admin client for the process, connected on first use and disconnected by close(). */
  kafkaAdmin(): Promise<KafkaAdmin>;
  close(): Promise<void>;
}

export function openResources(config: RelayConfig, log: Logger): Resources {
  const pool = createPool(config);
  pool.on('error', (error) => log.warn({ err: error }, 'idle Postgres connection failed'));
  const redis = createRedis(config);
  redis.on('error', (error: Error) => log.debug({ err: error }, 'Redis connection error'));
  const kafka = createKafka(config, log);
  let admin: Promise<KafkaAdmin> | undefined;
  return {
    config,
    log,
    topics: topicNames(config.kafka.topicPrefix),
    kafka,
    codec: EventCodec.create(config.registry.url),
    pool,
    redis,
    metrics: new Metrics(),
    kafkaAdmin() {
      admin ??= (async () => {
        const client = kafka.admin();
        await client.connect();
        return client;
      })().catch((error: unknown) => {
        admin = undefined;
        throw error;
      });
      return admin;
    },
    async close() {
      // An admin connection left open would keep the process alive until the broker drops it.
      const connected = admin;
      admin = undefined;
      await Promise.allSettled([pool.end(), redis.quit(), connected?.then((client) => client.disconnect())]);
    },
  };
}
