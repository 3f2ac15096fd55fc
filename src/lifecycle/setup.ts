import { ensureTopics } from '../kafka/admin.js';
import { migrate } from '../postgres/migrate.js';
import type { Resources } from './resources.js';

/**
 * Brings the dependencies to what this version of the relay expects: topics exist, event schemas
 * are registered (and compatible), the read model is migrated. Safe to run any number of times.
 */
export async function prepareDependencies(resources: Resources): Promise<void> {
  const { config, log, topics, kafka, codec, pool } = resources;
  const spec = (topic: string) => ({
    topic,
    numPartitions: config.kafka.partitions,
    replicationFactor: config.kafka.replicationFactor,
  });
  const created = await ensureTopics(kafka, [spec(topics.mailbox), spec(topics.peers), spec(topics.anchors), spec(topics.dlq)]);
  if (created.length > 0) log.info('created topics', { topics: created });
  const ids = await codec.registerAll();
  log.info('event schemas registered', { schema_ids: Object.fromEntries(ids) });
  await migrate(pool, config.postgres.schema, log);
}
