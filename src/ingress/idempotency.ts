import type { RecordPosition } from '../kafka/batching-producer.js';
import type { Redis } from '../presence/redis.js';

/** What a message id was used for before. */
export type Claim =
  | { readonly kind: 'new' }
  | { readonly kind: 'accepted'; readonly fingerprint: string; readonly position: RecordPosition; readonly to: string | undefined }
  | { readonly kind: 'pending'; readonly fingerprint: string };

const parse = (value: string | null): Claim => {
  if (value === null) return { kind: 'new' };
  const [state, fingerprint = '', partition = '0', offset = '0', to] = value.split('|');
  return state === 'A' ? { kind: 'accepted', fingerprint, position: { partition: Number(partition), offset }, to } : { kind: 'pending', fingerprint };
};

/**
 * Message ids already used, in Redis: `msg:<id>` holds `P|<fingerprint>` while the event is being
 * produced (for a minute at most, so a crashed ingress does not lock the id) and
 * `A|<fingerprint>|<partition>|<offset>|<recipient>` for a week once Kafka acknowledged it (so an
 * acknowledgement can be decided before the read model has the message). The claim is
 * one atomic SET NX GET per id. Commands go out through ioredis's auto-pipelining, so those of
 * all the requests handled in one event-loop turn share one write. The projector also ignores a second
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

  /** Claims a message id for a fingerprint: what it was used for before, or 'new' if it was free. */
  async claim({ id, fingerprint }: { id: string; fingerprint: string }): Promise<Claim> {
    return parse(await this.redis.set(this.key(id), `P|${fingerprint}`, 'EX', this.pendingSeconds, 'NX', 'GET'));
  }

  async accepted(entries: readonly { id: string; fingerprint: string; position: RecordPosition; to: string }[]): Promise<void> {
    await Promise.all(
      entries.map(({ id, fingerprint, position, to }) =>
        this.redis.set(this.key(id), `A|${fingerprint}|${position.partition}|${position.offset}|${to}`, 'EX', this.ttlSeconds),
      ),
    );
  }

  /** Gives up a claim whose event was not acknowledged, so a retry can produce it. */
  async release(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.del(...ids.map((id) => this.key(id)));
  }

  async lookup(id: string): Promise<Claim> {
    return parse(await this.redis.get(this.key(id)));
  }

  /** What each id was used for, in one round trip. */
  async lookupMany(ids: readonly string[]): Promise<Claim[]> {
    if (ids.length === 0) return [];
    return (await this.redis.mget(...ids.map((id) => this.key(id)))).map(parse);
  }
}
