import type { BatchHandler } from '../kafka/consumer-service.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { Redis } from '../redis/client.js';
import { toStreamMessage, type MessageView } from './stream-message.js';

/** Older messages are not pushed live: the recipient gets them from its backlog on connect. */
const MAX_PUSH_AGE_MS = 60_000;

/** The ingress nodes that hold a stream for a recipient. */
export type Holders = readonly string[];

/**
 * The record keys (recipient addresses) of a mailbox batch that some ingress node holds a stream
 * for, with those nodes: only their records are decoded (see ConsumerOptions.wantedKeys). Most
 * recipients have no stream open, and decoding was most of the router's work per message.
 */
export function streamHolders(
  store: PresenceStore,
): (keys: readonly string[]) => Promise<ReadonlyMap<string, Holders>> {
  return async (keys) => {
    const holders = await store.holders(keys);
    return new Map(keys.flatMap((key, i) => ((holders[i]?.length ?? 0) > 0 ? [[key, holders[i] as Holders]] : [])));
  };
}

/**
 * Pushes each new MessageSent to every ingress node that holds a stream for its recipient,
 * through that node's Redis channel: one PUBLISH per node per batch. The holders come with the
 * records (`streamHolders`, looked up once per batch); a record without them is looked up here.
 */
export function router(store: PresenceStore, redis: Redis, now: () => number = Date.now): BatchHandler<Holders> {
  return async (records) => {
    const fresh: { message: MessageView; holders: Holders | undefined }[] = [];
    for (const { event, partition, offset, wanted } of records) {
      if (event?.type === 'MessageSent' && now() - event.data.occurred_at <= MAX_PUSH_AGE_MS)
        fresh.push({ message: toStreamMessage(event.data, partition, offset), holders: wanted });
    }
    const unknown = fresh.filter((f) => f.holders === undefined);
    const looked = await store.holders(unknown.map((f) => f.message.to_address));
    unknown.forEach((f, i) => (f.holders = looked[i]));
    const byNode = new Map<string, MessageView[]>();
    for (const { message, holders } of fresh) {
      for (const node of holders ?? []) {
        const list = byNode.get(node) ?? [];
        list.push(message);
        byNode.set(node, list);
      }
    }
    if (byNode.size === 0) return;
    const pipeline = redis.pipeline();
    for (const [node, messages] of byNode) pipeline.publish(store.nodeChannel(node), JSON.stringify(messages));
    await pipeline.exec();
  };
}
