import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { RelayConfig } from '../config/config.js';

export type { Redis };

/** A Redis connection that fails commands fast while Redis is down instead of queueing them. */
export function createRedis(config: RelayConfig, name = 'relay'): Redis {
  return new Redis(config.redis.url, {
    connectionName: name,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    lazyConnect: false,
    // Commands issued in the same tick (many concurrent requests) go out in one write: on the
    // hot path this saves a system call per command.
    enableAutoPipelining: true,
    // rediss:// URLs turn TLS on; a private CA can be named.
    ...(config.redisCaFile ? { tls: { ca: readFileSync(config.redisCaFile, 'utf8') } } : {}),
  });
}
