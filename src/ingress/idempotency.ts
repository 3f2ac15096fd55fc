import type { RecordPosition } from '../kafka/batching-producer.js';
import type { Redis } from '../redis/client.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { redisScript, type RedisScript } from '../redis/script.js';

/** What a message id was used for before. */
export type Claim =
  | { readonly kind: 'new' }
  | {
      readonly kind: 'accepted';
      readonly fingerprint: string;
      readonly position: RecordPosition;
      readonly to: string | undefined;
    }
  | { readonly kind: 'pending'; readonly fingerprint: string };

/** Reads what a stored claim value says (`P|…` or `A|…`), or 'new' for none. */
export const parseClaim = (value: string | null): Claim => {
  if (value === null) return { kind: 'new' };
  const [state, fingerprint = '', partition = '0', offset = '0', to] = value.split('|');
  return state === 'A'
    ? { kind: 'accepted', fingerprint, position: { partition: Number(partition), offset }, to }
    : { kind: 'pending', fingerprint };
};

// KEYS: the ids' keys; ARGV: the TTL, then one value per key. One command for a whole request's
// ids instead of one SET each.
const SET_ALL = `
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS`;

// Frees claims still pending with the given value, and no other (ARGV[i] belongs to KEYS[i]).
const RELEASE_PENDING = `
local freed = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then freed = freed + redis.call('DEL', key) end
end
return freed`;

/**
 * Message ids already used, in Redis: `msg:<id>` holds `P|<fingerprint>|<request nonce>` while
 * the event is being produced (for a minute at most, so a crashed ingress does not lock the id)
 * and `A|<fingerprint>|<partition>|<offset>|<recipient>` for a week once Kafka acknowledged it (so
 * an acknowledgement can be decided before the read model has the message). Ids are claimed with
 * SET NX GET by the admission script (admission.ts), a whole request in one command. The
 * projector also ignores a second MessageSent for an id, so the read model stays right even if
 * Redis forgets.
 */
export class IdempotencyStore {
  private readonly setAll: RedisScript;
  private readonly releasePending: RedisScript;
  private readonly redisKeys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds = 7 * 24 * 3600,
    /** A claim whose producer died before answering frees the id after this long. */
    readonly pendingSeconds = 60,
  ) {
    this.redisKeys = redisKeys(prefix);
    this.setAll = redisScript(redis, 'relaySetAll', 'dynamic', SET_ALL);
    this.releasePending = redisScript(redis, 'relayReleasePending', 'dynamic', RELEASE_PENDING);
  }

  /** The Redis key holding a message id's claim. */
  keyOf(id: string): string {
    return this.redisKeys.idempotency(id);
  }

  /**
   * The value of a claim pending for a fingerprint, made by the request that `nonce` names (the
   * nonce lets that request free its own claims, and never another's for the same message).
   */
  static pending(fingerprint: string, nonce: string): string {
    return `P|${fingerprint}|${nonce}`;
  }

  /** Records that Kafka stored these messages' events, in one command. */
  async accepted(
    entries: readonly { id: string; fingerprint: string; position: RecordPosition; to: string }[],
  ): Promise<void> {
    if (entries.length === 0) return;
    await this.setAll.run(
      entries.length,
      ...entries.map(({ id }) => this.keyOf(id)),
      this.ttlSeconds,
      ...entries.map(
        ({ fingerprint, position, to }) => `A|${fingerprint}|${position.partition}|${position.offset}|${to}`,
      ),
    );
  }

  /**
   * Frees the claims still pending with exactly these values (after a failure whose outcome is
   * unknown): those one request made, not a concurrent retry's claim of the same message.
   */
  async releaseIfPending(entries: readonly { id: string; value: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.releasePending.run(
      entries.length,
      ...entries.map(({ id }) => this.keyOf(id)),
      ...entries.map(({ value }) => value),
    );
  }

  /** Gives up a claim whose event was not acknowledged, so a retry can produce it. */
  async release(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.del(...ids.map((id) => this.keyOf(id)));
  }

  async lookup(id: string): Promise<Claim> {
    return parseClaim(await this.redis.get(this.keyOf(id)));
  }

  /** What each id was used for, in one round trip. */
  async lookupMany(ids: readonly string[]): Promise<Claim[]> {
    if (ids.length === 0) return [];
    return (await this.redis.mget(...ids.map((id) => this.keyOf(id)))).map(parseClaim);
  }
}
