import type { ChainableCommander } from 'ioredis';
import type { RecordPosition } from '../kafka/batching-producer.js';
import type { Redis } from '../presence/redis.js';

/** What a message id was used for before. */
export type Claim =
  | { readonly kind: 'new' }
  | { readonly kind: 'accepted'; readonly fingerprint: string; readonly position: RecordPosition }
  | { readonly kind: 'pending'; readonly fingerprint: string };

const parse = (value: string | null): Claim => {
  if (value === null) return { kind: 'new' };
  const [state, fingerprint = '', partition = '0', offset = '0'] = value.split('|');
  return state === 'A' ? { kind: 'accepted', fingerprint, position: { partition: Number(partition), offset } } : { kind: 'pending', fingerprint };
};

/**
 * Message ids already used, in Redis: `msg:<id>` holds `P|<fingerprint>` while the event is being
 * produced (for a minute at most, so a crashed ingress does not lock the id) and
 * `A|<fingerprint>|<partition>|<offset>` for a week once Kafka acknowledged it. The claim is
 * one atomic SET NX GET per id, pipelined for a batch. The projector also ignores a second
 * MessageSent for an id, so the read model stays right even if Redis forgets.
 */
export class IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds = 7 * 24 * 3600,
    /** A claim whose producer died before answering frees the id after this long. */
    private readonly pendingSeconds = 60,
  ) {}

  private key(id: string) {
    return `${this.prefix}msg:${id}`;
  }

  async claim(entries: readonly { id: string; fingerprint: string }[]): Promise<Claim[]> {
    const pipeline = this.redis.pipeline();
    for (const entry of entries) this.queueClaim(pipeline, entry);
    return ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return this.claimOf(value);
    });
  }

  /** Queues one claim in a pipeline shared with other commands; read it back with claimOf(). */
  queueClaim(pipeline: ChainableCommander, { id, fingerprint }: { id: string; fingerprint: string }): void {
    pipeline.call('SET', this.key(id), `P|${fingerprint}`, 'NX', 'GET', 'EX', this.pendingSeconds);
  }

  claimOf(value: unknown): Claim {
    return parse(value as string | null);
  }

  async accepted(entries: readonly { id: string; fingerprint: string; position: RecordPosition }[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { id, fingerprint, position } of entries) {
      pipeline.set(this.key(id), `A|${fingerprint}|${position.partition}|${position.offset}`, 'EX', this.ttlSeconds);
    }
    await pipeline.exec();
  }

  /** Gives up a claim whose event was not acknowledged, so a retry can produce it. */
  async release(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.del(...ids.map((id) => this.key(id)));
  }

  async lookup(id: string): Promise<Claim> {
    return parse(await this.redis.get(this.key(id)));
  }
}
