import type { Redis } from '../redis/client.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { redisScript, type RedisScript } from '../redis/script.js';

import type { PeerRecord } from '../api/peers.js';

export type { PeerRecord };

// Removes an address from the online set only if its score is not newer than the event.
const GO_OFFLINE = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1`;

// A node's last stream for an address closed: forget the node, and take the address out of the
// online set unless another node still holds a stream for it or a newer sighting exists.
const CLOSE_STREAM = `
redis.call('SREM', KEYS[1], ARGV[2])
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[3]) then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1`;

// Saves a peer's registration unless the one held was signed at the same time or later, so an
// older registration replayed later cannot bring back an old key (a hash without signed_at was
// written before it was kept, and is replaced).
const SAVE_PEER = `
local held = redis.call('HGET', KEYS[1], 'signed_at')
if held and tonumber(held) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'signed_at', ARGV[1], 'signing_key', ARGV[2], 'encryption_key', ARGV[3], 'connection_info', ARGV[4], 'registered_at', ARGV[5])
return 1`;

// The members of each KEYS[i] that has any, as {i, members...}: a batch's lookups in one command,
// and nothing sent back for the (usually many) recipients without a stream.
const HOLDERS = `
local out = {}
for i, key in ipairs(KEYS) do
  local nodes = redis.call('SMEMBERS', key)
  if #nodes > 0 then
    table.insert(nodes, 1, i)
    out[#out + 1] = nodes
  end
end
return out`;

/**
 * Presence in Redis, under the configured key prefix:
 * - `online`: sorted set of addresses scored by last-seen time (ms); a peer counts as online while
 *   its score is within the TTL, so a node that dies without closing its sockets stops vouching
 *   for its peers after at most one TTL;
 * - `sockets:<address>`: set of the ingress nodes that hold a stream for it, expiring one TTL
 *   after the last heartbeat, so a dead node's entries go away on their own;
 * - `peer:<address>`: the peer's registered keys and connection info.
 */
export class PresenceStore {
  private readonly closeStream: RedisScript;
  private readonly redisKeys: RedisKeys;
  private readonly goOffline: RedisScript;
  private readonly savePeerScript: RedisScript;
  private readonly holdersScript: RedisScript;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
  ) {
    this.redisKeys = redisKeys(prefix);
    this.closeStream = redisScript(redis, 'relayCloseStream', 2, CLOSE_STREAM);
    this.goOffline = redisScript(redis, 'relayGoOffline', 1, GO_OFFLINE);
    this.savePeerScript = redisScript(redis, 'relaySavePeer', 1, SAVE_PEER);
    this.holdersScript = redisScript(redis, 'relayHolders', 'dynamic', HOLDERS);
  }

  private get onlineKey() {
    return this.redisKeys.online;
  }
  private socketsKey(address: string) {
    return this.redisKeys.sockets(address);
  }
  private peerKey(address: string) {
    return this.redisKeys.peer(address);
  }
  /** The pub/sub channel of one ingress node. */
  nodeChannel(nodeId: string) {
    return this.redisKeys.node(nodeId);
  }

  /** A stream opened on `nodeId`: route pushes there and count the peer online from `at`. */
  async connected(address: string, nodeId: string, at: number): Promise<void> {
    await this.redis
      .multi()
      .zadd(this.onlineKey, 'GT', at, address)
      .sadd(this.socketsKey(address), nodeId)
      .expire(this.socketsKey(address), this.ttlSeconds)
      .exec();
  }

  /** The last stream of `address` on `nodeId` closed at `at`. */
  async disconnected(address: string, nodeId: string, at: number): Promise<void> {
    await this.closeStream.run(this.socketsKey(address), this.onlineKey, address, nodeId, at);
  }

  /** Refreshes the last-seen time of peers whose streams are open on this node. */
  async heartbeat(addresses: readonly string[], at: number, nodeId: string): Promise<void> {
    if (addresses.length === 0) return;
    const pipeline = this.redis.pipeline();
    pipeline.zadd(this.onlineKey, 'GT', ...addresses.flatMap((a) => [at, a]));
    for (const address of addresses)
      pipeline.sadd(this.socketsKey(address), nodeId).expire(this.socketsKey(address), this.ttlSeconds);
    await pipeline.exec();
  }

  /** Applies a presence event from the log (idempotent; an older event never undoes a newer one). */
  async applyPresence(address: string, online: boolean, at: number): Promise<void> {
    if (online) await this.redis.zadd(this.onlineKey, 'GT', at, address);
    else await this.goOffline.run(this.onlineKey, address, at);
  }

  /** Saves a registration if it was signed later than the one held; true if it was saved. */
  async savePeer(
    address: string,
    fields: {
      signing_key: string;
      encryption_key: string;
      connection_info: string;
      registered_at: number;
      signed_at: number;
    },
  ): Promise<boolean> {
    const saved = await this.savePeerScript.run(
      this.peerKey(address),
      fields.signed_at,
      fields.signing_key,
      fields.encryption_key,
      fields.connection_info,
      fields.registered_at,
    );
    return saved === 1;
  }

  /** The nodes that hold a stream for each address (empty: none), in one command. */
  async holders(addresses: readonly string[]): Promise<string[][]> {
    if (addresses.length === 0) return [];
    const unique = [...new Set(addresses)];
    const found = (await this.holdersScript.run(unique.length, ...unique.map((a) => this.socketsKey(a)))) as [
      number,
      ...string[],
    ][];
    const byAddress = new Map<string, string[]>();
    for (const [index, ...nodes] of found) byAddress.set(unique[index - 1] as string, nodes);
    return addresses.map((address) => byAddress.get(address) ?? []);
  }

  /** Last-seen time (ms) if the peer is online now. */
  async onlineSince(address: string, now = Date.now()): Promise<number | undefined> {
    const score = await this.redis.zscore(this.onlineKey, address);
    return score !== null && Number(score) >= now - this.ttlSeconds * 1000 ? Number(score) : undefined;
  }

  /**
   * Registered peers online now, most recently seen first, without `excluding`; `offset` pages
   * through the online set. Returns the page and the offset of the next one, if any.
   */
  async discover(
    excluding: string,
    limit: number,
    offset: number,
    now = Date.now(),
  ): Promise<{ peers: PeerRecord[]; next: number | undefined }> {
    const floor = now - this.ttlSeconds * 1000;
    const raw = await this.redis.zrevrangebyscore(
      this.onlineKey,
      '+inf',
      floor,
      'WITHSCORES',
      'LIMIT',
      offset,
      limit + 1,
    );
    const entries: { address: string; seen: number }[] = [];
    for (let i = 0; i < raw.length; i += 2) entries.push({ address: raw[i] as string, seen: Number(raw[i + 1]) });
    const more = entries.length > limit;
    const page = entries.slice(0, limit);
    const pipeline = this.redis.pipeline();
    for (const { address } of page) pipeline.hgetall(this.peerKey(address));
    const records = (await pipeline.exec()) ?? [];
    const peers: PeerRecord[] = [];
    page.forEach(({ address, seen }, i) => {
      const fields = records[i]?.[1] as Record<string, string> | undefined;
      if (address === excluding || !fields?.['signing_key']) return;
      peers.push({
        address,
        signing_key: JSON.parse(fields['signing_key']) as PeerRecord['signing_key'],
        encryption_key: JSON.parse(fields['encryption_key'] ?? 'null') as PeerRecord['encryption_key'],
        connection_info: JSON.parse(fields['connection_info'] ?? '{}') as PeerRecord['connection_info'],
        last_seen: new Date(seen).toISOString(),
      });
    });
    return { peers, next: more ? offset + limit : undefined };
  }
}
