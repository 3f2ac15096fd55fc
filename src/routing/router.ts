import type { BatchHandler } from '../kafka/consumer-service.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { Redis } from '../redis/client.js';
import { toStreamMessage, type MessageView } from './stream-message.js';

/** Older messages are not pushed live: the recipient gets them from its backlog on connect. */
const MAX_PUSH_AGE_MS = 60_000;

/**
 * The record keys (recipient addresses) of a mailbox batch that some ingress node holds a stream
 * for: only their records need decoding. Most recipients have no stream open, and decoding was
 * most of the router's work per message.
 */
export function streamHolderKeys(store: PresenceStore): (keys: readonly string[]) => Promise<ReadonlySet<string>> {
  return async (keys) => {
    const holders = await store.holders(keys);
    return new Set(keys.filter((_, i) => (holders[i]?.length ?? 0) > 0));
  };
}

/**
 * Pushes each new MessageSent to every ingress node that holds a stream for its recipient,
 * through that node's Redis channel: one pipelined lookup and one PUBLISH per node per batch.
 */
export function router(store: PresenceStore, redis: Redis, now: () => number = Date.now): BatchHandler {
  return async (records) => {
    const fresh: MessageView[] = [];
    for (const { event, partition, offset } of records) {
      if (event?.type === 'MessageSent' && now() - event.data.occurred_at <= MAX_PUSH_AGE_MS)
        fresh.push(toStreamMessage(event.data, partition, offset));
    }
    if (fresh.length === 0) return;
    const holders = await store.holders(fresh.map((m) => m.to_address));
    const byNode = new Map<string, unknown[]>();
    fresh.forEach((message, i) => {
      for (const node of holders[i] ?? []) {
        const list = byNode.get(node) ?? [];
        list.push(message);
        byNode.set(node, list);
      }
    });
    if (byNode.size === 0) return;
    const pipeline = redis.pipeline();
    for (const [node, messages] of byNode) pipeline.publish(store.nodeChannel(node), JSON.stringify(messages));
    await pipeline.exec();
  };
}
