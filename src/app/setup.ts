import { alignTopicConfigs, ensureTopics } from '../kafka/admin.js';
import { migrate } from '../postgres/migrate.js';
import type { Resources } from './resources.js';

/**
 * Brings the dependencies to what this version of the relay expects: topics exist with the
 * configured retention, event schemas are registered (and compatible), the read model is
 * migrated. Safe to run any number of times.
 */
export async function prepareDependencies(resources: Resources): Promise<void> {
  const { config, log, topics, kafka, codec, pool } = resources;
  const spec = (topic: string, retentionMs?: number) => ({
    topic,
    numPartitions: config.kafka.partitions,
    replicationFactor: config.kafka.replicationFactor,
    configEntries: retentionMs === undefined ? [] : [{ name: 'retention.ms', value: String(retentionMs) }],
  });
  // Anchors are kept forever: a proof, and a rebuild of the anchoring tables, needs every one.
  const specs = [
    spec(topics.mailbox, config.retention.mailboxMs),
    spec(topics.peers, config.retention.peersMs),
    spec(topics.anchors, -1),
    spec(topics.dlq, config.retention.mailboxMs),
  ];
  const created = await ensureTopics(kafka, specs);
  if (created.length > 0) log.info({ topics: created }, 'created topics');
  const altered = await alignTopicConfigs(
    kafka,
    specs.filter((s) => !created.includes(s.topic)),
  );
  if (altered.length > 0) log.info({ changes: altered }, 'changed topic configuration');
  const ids = await codec.registerAll();
  log.info({ schema_ids: Object.fromEntries(ids) }, 'event schemas registered');
  await migrate(pool, config.postgres.schema, log);
}
