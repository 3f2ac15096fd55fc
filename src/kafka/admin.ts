import kafkajs from 'kafkajs';
import type { KafkaAdmin, KafkaClient } from './client.js';

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
        waitForLeaders: false,
        topics: missing.map((spec) => ({ ...spec, configEntries: spec.configEntries ? [...spec.configEntries] : [] })),
      });
      await waitForLeaders(
        admin,
        missing.map((spec) => spec.topic),
      );
    }
    return missing.map((spec) => spec.topic);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until every partition of the topics has a leader. kafkajs's own wait gives up on the
 * first "does not host this topic-partition" answer, which a broker still learning of a new
 * topic gives under load; this one asks again until the deadline.
 */
async function waitForLeaders(admin: KafkaAdmin, topics: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (
        metadata.topics.length === topics.length &&
        metadata.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))
      )
        return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `the new topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`,
  );
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

/** What the producer needs to know of a topic: its partitions and the broker's record-batch limit. */
export interface TopicLayout {
  readonly partitions: number;
  /** The topic's `max.message.bytes`: the largest record batch (per partition and request) the broker accepts. */
  readonly maxMessageBytes: number;
}

/** Partition count and record-batch limit of each topic, from the cluster's metadata and configuration. */
export async function topicLayouts(kafka: KafkaClient, topics: readonly string[]): Promise<Map<string, TopicLayout>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name,
        configNames: ['max.message.bytes'],
      })),
    });
    const limits = new Map(
      configs.resources.map((r) => [
        r.resourceName,
        Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue),
      ]),
    );
    return new Map(
      metadata.topics.map((t) => {
        const limit = limits.get(t.name);
        // 1 MiB and a little: Kafka's default, should a broker not say.
        return [
          t.name,
          {
            partitions: t.partitions.length,
            maxMessageBytes: limit && Number.isFinite(limit) && limit > 0 ? limit : 1_048_588,
          },
        ];
      }),
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * Gives existing topics the `configEntries` of their specs, altering only those that differ.
 * Kafka's AlterConfigs replaces a topic's whole set of overrides, so the topic's other overrides
 * are sent along unchanged. Returns `topic: name=value` for each change.
 */
export async function alignTopicConfigs(kafka: KafkaClient, specs: readonly TopicSpec[]): Promise<string[]> {
  const wanted = specs.filter((spec) => (spec.configEntries ?? []).length > 0);
  if (wanted.length === 0) return [];
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: wanted.map((spec) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name: spec.topic })),
    });
    const changes: string[] = [];
    const alterations = wanted.flatMap((spec) => {
      const entries = resources.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
      const overrides = new Map(
        entries
          .filter((e) => e.configSource === kafkajs.ConfigSource.TOPIC_CONFIG && !e.isSensitive && !e.readOnly)
          .map((e) => [e.configName, e.configValue]),
      );
      const differing = (spec.configEntries ?? []).filter(
        ({ name, value }) => entries.find((e) => e.configName === name)?.configValue !== value,
      );
      if (differing.length === 0) return [];
      for (const { name, value } of differing) {
        overrides.set(name, value);
        changes.push(`${spec.topic}: ${name}=${value}`);
      }
      return [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: spec.topic,
          configEntries: [...overrides].map(([name, value]) => ({ name, value })),
        },
      ];
    });
    if (alterations.length > 0) await admin.alterConfigs({ validateOnly: false, resources: alterations });
    return changes;
  } finally {
    await admin.disconnect();
  }
}

/** One configuration value of a topic as the broker applies it (its override, or the broker's default). */
export async function topicConfigValue(kafka: KafkaClient, topic: string, name: string): Promise<string | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }],
    });
    return resources[0]?.configEntries.find((e) => e.configName === name)?.configValue;
  } finally {
    await admin.disconnect();
  }
}
