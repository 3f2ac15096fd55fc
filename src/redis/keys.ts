/**
 * Every Redis key and pub/sub channel the relay uses, in one place, each under the configured
 * prefix (RELAY_REDIS_PREFIX) so that two relays, or two test files, can share one Redis.
 */
export interface RedisKeys {
  /** Sorted set of online addresses, scored by when each was last seen. */
  readonly online: string;
  /** Set of the ingress nodes holding a stream of `address`. */
  sockets(address: string): string;
  /** Cached registration of a peer. */
  peer(address: string): string;
  /** The pub/sub channel of one ingress node. */
  node(nodeId: string): string;
  /** The idempotency record of a message id. */
  idempotency(messageId: string): string;
  /** The GCRA state of one rate-limited key. */
  rate(key: string): string;
  /** The receipt of an acknowledged message. */
  ack(messageId: string): string;
  /** A challenge nonce handed out for a token. */
  nonce(nonce: string): string;
}

export const redisKeys = (prefix: string): RedisKeys => ({
  online: `${prefix}online`,
  sockets: (address) => `${prefix}sockets:${address}`,
  peer: (address) => `${prefix}peer:${address}`,
  node: (nodeId) => `${prefix}node:${nodeId}`,
  idempotency: (messageId) => `${prefix}msg:${messageId}`,
  rate: (key) => `${prefix}rate:${key}`,
  ack: (messageId) => `${prefix}ack:${messageId}`,
  nonce: (nonce) => `${prefix}nonce:${nonce}`,
});
