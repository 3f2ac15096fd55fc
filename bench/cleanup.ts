import type { RelayConfig } from '../src/config/config.js';
import type { Resources } from '../src/app/resources.js';

/** Deletes what one run made: its topics and consumer groups, its Postgres schema, its Redis keys. */
export async function cleanupRun(
  resources: Resources,
  config: RelayConfig,
  groups: readonly string[] = [],
): Promise<void> {
  const admin = resources.kafka.admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(config.kafka.topicPrefix));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
    if (groups.length > 0)
      await admin.deleteGroups(groups.map((g) => `${config.kafka.groupPrefix}.${g}`)).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
  await resources.pool.query(`DROP SCHEMA IF EXISTS "${config.postgres.schema}" CASCADE`);
  let cursor = '0';
  do {
    const [next, keys] = await resources.redis.scan(cursor, 'MATCH', `${config.redis.keyPrefix}*`, 'COUNT', 5000);
    cursor = next;
    if (keys.length > 0) await resources.redis.unlink(...keys);
  } while (cursor !== '0');
}
