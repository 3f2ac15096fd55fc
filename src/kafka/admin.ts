import type { KafkaClient } from './client.js';

export interface TopicSpec {
  readonly topic: string;
  readonly numPartitions: number;
  readonly replicationFactor: number;
  readonly configEntries?: readonly { name: string; value: string }[];
}

/** Creates the topics that do not exist yet; returns the names it created. */
export async function ensureTopics(kafka: KafkaClient, specs: readonly TopicSpec[]): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((spec) => !existing.has(spec.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({ ...spec, configEntries: spec.configEntries ? [...spec.configEntries] : [] })),
      });
    }
    return missing.map((spec) => spec.topic);
  } finally {
    await admin.disconnect();
  }
}

/** Partition count of each topic, from the cluster's metadata. */
export async function partitionCounts(kafka: KafkaClient, topics: readonly string[]): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
    return new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
  } finally {
    await admin.disconnect();
  }
}
