import type { RelayConfig } from '../config/config.js';
import { EventCodec } from '../events/codec.js';
import { topicNames, type Topics } from '../events/topics.js';
import { createKafka, type KafkaClient } from '../kafka/client.js';
import { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { createPool, type Pool } from '../postgres/pool.js';
import { createRedis, type Redis } from '../presence/redis.js';

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
  close(): Promise<void>;
}

export function openResources(config: RelayConfig, log: Logger): Resources {
  const pool = createPool(config);
  pool.on('error', (error) => log.warn('idle Postgres connection failed', { error: error.message }));
  const redis = createRedis(config);
  redis.on('error', (error: Error) => log.debug('Redis connection error', { error: error.message }));
  return {
    config,
    log,
    topics: topicNames(config.kafka.topicPrefix),
    kafka: createKafka(config, log),
    codec: EventCodec.create(config.registry.url),
    pool,
    redis,
    metrics: new Metrics(),
    async close() {
      await Promise.allSettled([pool.end(), redis.quit()]);
    },
  };
}
