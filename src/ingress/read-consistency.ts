import type { Topics } from '../events/topics.js';
import type { BatchingProducer, RecordPosition } from '../kafka/batching-producer.js';
import type { LogEnds } from '../kafka/log-ends.js';
import type { CheckpointWatch, LogPosition } from '../projections/checkpoint-watch.js';
import { invalid } from './validation.js';

/** The request header (or query parameter) that carries a consistency token. */
export const TOKEN_HEADER = 'Consistency-Token';
export const TOKEN_PARAM = 'consistency_token';
/** The response header that says whether a read covers what it waited for. */
export const RESULT_HEADER = 'Relay-Consistency';

/** The topics a token may name: the ones the read model is projected from. */
export type TokenTopic = 'mailbox' | 'peers';

const ENTRY = /^(mailbox|peers):(\d{1,6}):(\d{1,19})$/;
const MAX_ENTRIES = 64;
const MAX_OFFSET = 2n ** 63n - 1n;

/**
 * Read-your-writes across nodes. Every write answers with a consistency token: the log positions
 * of its events, as `topic:partition:offset` entries joined by commas (`mailbox:3:1042`), the
 * highest per partition. A read that carries one waits, up to a bound, until the read model has
 * applied those positions, and every read waits for the last write this node made to the read
 * address's partition. Either way the answer says whether it caught up.
 */
export class ReadConsistency {
  constructor(
    private readonly deps: {
      readonly watch: CheckpointWatch;
      readonly producer: BatchingProducer;
      readonly logEnds: LogEnds;
      readonly topics: Topics;
      /** How long a read waits for the read model before it answers with what is there. */
      readonly waitMs: number;
    },
  ) {}

  /** The token of writes stored at these positions of one topic. */
  static token(topic: TokenTopic, positions: readonly RecordPosition[]): string {
    // Every accepted message of a batch gets its own token: skip the map for one position.
    if (positions.length === 1) {
      const [{ partition, offset }] = positions as [RecordPosition];
      return `${topic}:${partition}:${offset}`;
    }
    const highest = new Map<number, bigint>();
    for (const { partition, offset } of positions) {
      const value = BigInt(offset);
      if ((highest.get(partition) ?? -1n) < value) highest.set(partition, value);
    }
    return [...highest].map(([partition, offset]) => `${topic}:${partition}:${offset}`).join(',');
  }

  /** The full name of a token topic. */
  topic(topic: TokenTopic): string {
    return this.deps.topics[topic];
  }

  /** Whether the read model has applied these positions, as far as this node knows now. */
  covers(positions: readonly LogPosition[]): boolean {
    return this.deps.watch.covers(positions);
  }

  /** The positions a token names; a malformed token is the client's error (400). */
  parse(token: string): LogPosition[] {
    const entries = token.split(',');
    if (entries.length > MAX_ENTRIES)
      throw invalid(TOKEN_PARAM, `A consistency token names at most ${MAX_ENTRIES} positions.`);
    return entries.map((entry) => {
      const match = ENTRY.exec(entry.trim());
      const offset = match ? BigInt(match[3] as string) : -1n;
      if (!match || offset > MAX_OFFSET) {
        throw invalid(
          TOKEN_PARAM,
          'consistency_token must be a consistency_token a write returned, such as "mailbox:3:1042".',
        );
      }
      return { topic: this.deps.topics[match[1] as TokenTopic], partition: Number(match[2]), offset };
    });
  }

  /**
   * Waits until the read model covers `token` and this node's last write for `key` in `topic` (a
   * client's token names its own writes; others may have written to the address through this
   * node). Resolves whether it does (false: the read answers from a model that may lag), and the
   * positions the read must see, by which a read replica is chosen or passed over.
   */
  async settle(
    token: string | undefined,
    topic: TokenTopic,
    key: string,
  ): Promise<{ applied: boolean; positions: LogPosition[] }> {
    const positions = [...(token !== undefined ? this.parse(token) : []), ...this.lastWrite(topic, key)];
    return { applied: await this.deps.watch.waitFor(positions, this.deps.waitMs), positions };
  }

  /**
   * Waits until the read model has applied `key`'s partition of `topic` up to the partition's end
   * as it is now, whoever wrote it: after this, the read model knows every event written before
   * the call. Resolves whether it caught up within the bound (or `waitMs`).
   */
  async awaitLogEnd(topic: TokenTopic, key: string, waitMs = this.deps.waitMs): Promise<boolean> {
    const name = this.deps.topics[topic];
    const partition = this.deps.producer.partitionFor(name, key);
    const offset = await this.deps.logEnds.lastOffset(name, partition);
    return this.deps.watch.waitFor(offset < 0n ? [] : [{ topic: name, partition, offset }], waitMs);
  }

  private lastWrite(topic: TokenTopic, key: string): LogPosition[] {
    const name = this.deps.topics[topic];
    const last = this.deps.producer.lastStoredFor(name, key);
    return last ? [{ topic: name, partition: last.partition, offset: BigInt(last.offset) }] : [];
  }
}
