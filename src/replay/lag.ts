import kafkajs from 'kafkajs';
import type { KafkaClient } from '../kafka/client.js';

const { AssignerProtocol } = kafkajs;

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** The group's committed offset (the next record it will read), or null if it never committed here. */
  readonly committed: number | null;
  /** The log end offset: the offset the next record written will get. */
  readonly end: number;
  /** end − committed; null without a commit. */
  readonly lag: number | null;
}

export interface GroupLag {
  readonly group: string;
  /** The broker's view of the group: Stable, Empty, PreparingRebalance, ... */
  readonly state: string;
  readonly members: number;
  readonly partitions: readonly PartitionLag[];
  /** Sum of the partitions' lag. */
  readonly lag: number;
}

/**
 * Lag of every consumer group named `<groupPrefix>.<something>` (the relay's projector, presence
 * and router). A group's partitions are those it committed offsets for, among `topics`, plus
 * those assigned to its members right now.
 */
export async function consumerLag(
  kafka: KafkaClient,
  groupPrefix: string,
  topics: readonly string[],
): Promise<GroupLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groupIds = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((id) => id.startsWith(`${groupPrefix}.`))
      .sort();
    if (groupIds.length === 0) return [];
    const existing = new Set(await admin.listTopics());
    const descriptions = new Map((await admin.describeGroups(groupIds)).groups.map((g) => [g.groupId, g]));
    const ends = new Map<string, Map<number, number>>();
    const endsOf = async (topic: string): Promise<Map<number, number>> => {
      let known = ends.get(topic);
      if (!known) {
        known = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
        ends.set(topic, known);
      }
      return known;
    };

    const result: GroupLag[] = [];
    for (const group of groupIds) {
      const description = descriptions.get(group);
      const assigned = new Map<string, Set<number>>();
      for (const member of description?.members ?? []) {
        if (member.memberAssignment.length === 0) continue;
        const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
        for (const [topic, partitions] of Object.entries(decoded?.assignment ?? {})) {
          const set = assigned.get(topic) ?? new Set<number>();
          for (const p of partitions) set.add(p);
          assigned.set(topic, set);
        }
      }
      const candidates = [...new Set([...topics, ...assigned.keys()])].filter((t) => existing.has(t)).sort();
      const committed = candidates.length === 0 ? [] : await admin.fetchOffsets({ groupId: group, topics: candidates });
      const partitions: PartitionLag[] = [];
      for (const { topic, partitions: offsets } of committed) {
        const topicEnds = await endsOf(topic);
        for (const { partition, offset } of offsets) {
          const value = Number(offset);
          const isAssigned = assigned.get(topic)?.has(partition) ?? false;
          if (value < 0 && !isAssigned) continue;
          const end = topicEnds.get(partition) ?? 0;
          partitions.push({
            topic,
            partition,
            committed: value < 0 ? null : value,
            end,
            lag: value < 0 ? null : Math.max(0, end - value),
          });
        }
      }
      partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
      result.push({
        group,
        state: description?.state ?? 'Unknown',
        members: description?.members.length ?? 0,
        partitions,
        lag: partitions.reduce((sum, p) => sum + (p.lag ?? 0), 0),
      });
    }
    return result;
  } finally {
    await admin.disconnect();
  }
}

/** A plain-text table: one row per group and partition, and each group's total. */
export function renderLagTable(groups: readonly GroupLag[]): string {
  if (groups.length === 0) return 'No consumer groups with that prefix.\n';
  const header = ['GROUP', 'TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG'];
  const rows: string[][] = [];
  for (const g of groups) {
    for (const p of g.partitions) {
      rows.push([
        g.group,
        p.topic,
        String(p.partition),
        p.committed === null ? '-' : String(p.committed),
        String(p.end),
        p.lag === null ? '-' : String(p.lag),
      ]);
    }
    rows.push([
      g.group,
      `(total: ${g.state}, ${g.members} member${g.members === 1 ? '' : 's'})`,
      '',
      '',
      '',
      String(g.lag),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = [false, false, true, true, true, true];
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
