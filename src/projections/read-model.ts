import type { ConsumedRecord } from '../kafka/consumer-service.js';
import { registrationSignedAt, type EventType } from '../events/types.js';
import { expiresAtOf } from '../events/lifetime.js';

/**
 * The Postgres read model as a pure function of the events: `planBatch` folds one partition's
 * records, in log order, into the rows and updates they imply. The writer
 * (postgres-projector.ts) turns a plan into a few multi-row statements.
 */

export const HANDLED_EVENTS: readonly EventType[] = [
  'MessageSent',
  'MessageDelivered',
  'MessageExpired',
  'PeerRegistered',
  'PeerPresenceChanged',
  'AnchorCommitted',
];

export interface MessageRow {
  readonly id: string;
  readonly sender: string;
  readonly receiver: string;
  readonly type: string;
  readonly content: string;
  readonly contentSha256: string;
  readonly signature: string;
  readonly acceptedAt: number;
  readonly expiresAt: number;
  readonly partition: number;
  readonly offset: string;
}

export interface PeerRow {
  readonly address: string;
  /** When the first registration of this peer in the batch happened (the row's registered_at if new). */
  readonly firstAt: number;
  readonly signingKey: string;
  readonly encryptionKey: string;
  readonly connectionInfo: string;
  readonly registration: string;
  /** When the peer signed this registration (ms): a row is only replaced by one signed later. */
  readonly signedAt: number;
  readonly at: number;
  readonly partition: number;
  readonly offset: string;
}

export interface Stamp {
  readonly key: string;
  readonly at: number;
}

/** An anchored batch (AnchorCommitted), with the messages of its leaves in leaf order. */
export interface AnchorRow {
  readonly batchId: string;
  readonly root: string;
  readonly treeSize: number;
  readonly chainId: number;
  readonly contract: string;
  readonly txHash: string;
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly blockTime: number;
  readonly leafHashes: Buffer;
  readonly committedAt: number;
  readonly messageIds: readonly string[];
}

export interface ReadModelPlan {
  /** New messages; a message id seen again keeps its first row. */
  readonly messages: readonly MessageRow[];
  /**
   * A message is settled once, by the first MessageDelivered or MessageExpired in the log: a
   * message id is in at most one of these two lists, and the writer leaves rows that an earlier
   * batch settled as they are. So a duplicate changes nothing, and neither event undoes the other.
   */
  readonly deliveries: readonly Stamp[];
  readonly expiries: readonly Stamp[];
  /** The newest signed registration of each peer in the batch (of equals, the first in the log). */
  readonly peers: readonly PeerRow[];
  /** The latest presence of each peer in the batch (key: address). */
  readonly presence: readonly (Stamp & { readonly online: boolean })[];
  /** Anchored batches; one written again after a crash (same id) is kept once. */
  readonly anchors: readonly AnchorRow[];
}

export function planBatch(records: readonly ConsumedRecord[]): ReadModelPlan {
  const messages = new Map<string, MessageRow>();
  const deliveries = new Map<string, Stamp>();
  const expiries = new Map<string, Stamp>();
  const settled = (id: string) => deliveries.has(id) || expiries.has(id);
  const peers = new Map<string, PeerRow>();
  const presence = new Map<string, Stamp & { online: boolean }>();
  const anchors = new Map<string, AnchorRow>();

  for (const { event, partition, offset } of records) {
    if (!event) continue; // dead-lettered: counted as consumed, changes nothing
    switch (event.type) {
      case 'MessageSent': {
        const e = event.data;
        if (messages.has(e.message_id)) break;
        messages.set(e.message_id, {
          id: e.message_id,
          sender: e.from_address,
          receiver: e.to_address,
          type: e.message_type,
          content: e.encrypted_content,
          contentSha256: e.content_sha256,
          signature: e.signature,
          acceptedAt: e.occurred_at,
          expiresAt: expiresAtOf(e),
          partition,
          offset,
        });
        break;
      }
      case 'MessageDelivered':
        if (!settled(event.data.message_id))
          deliveries.set(event.data.message_id, { key: event.data.message_id, at: event.data.occurred_at });
        break;
      case 'MessageExpired':
        if (!settled(event.data.message_id))
          expiries.set(event.data.message_id, { key: event.data.message_id, at: event.data.occurred_at });
        break;
      case 'PeerRegistered': {
        const e = event.data;
        // An older registration replayed later must not bring back an old key: the newest signed
        // one wins, whatever order they reach the log in, so a rebuild ends where the live model did.
        const held = peers.get(e.address);
        const signedAt = registrationSignedAt(e);
        if (held && held.signedAt >= signedAt) break;
        peers.set(e.address, {
          address: e.address,
          firstAt: held?.firstAt ?? e.occurred_at,
          signingKey: e.signing_key,
          encryptionKey: e.encryption_key,
          connectionInfo: e.connection_info,
          registration: e.registration,
          signedAt,
          at: e.occurred_at,
          partition,
          offset,
        });
        break;
      }
      case 'PeerPresenceChanged':
        presence.set(event.data.address, {
          key: event.data.address,
          at: event.data.occurred_at,
          online: event.data.online,
        });
        break;
      case 'AnchorCommitted': {
        const e = event.data;
        if (anchors.has(e.event_id)) break;
        anchors.set(e.event_id, {
          batchId: e.event_id,
          root: e.root,
          treeSize: e.tree_size,
          chainId: e.chain_id,
          contract: e.contract,
          txHash: e.tx_hash,
          blockNumber: e.block_number,
          blockHash: e.block_hash,
          blockTime: e.block_time,
          leafHashes: e.leaf_hashes,
          committedAt: e.occurred_at,
          messageIds: e.message_ids,
        });
        break;
      }
    }
  }
  return {
    messages: [...messages.values()],
    deliveries: [...deliveries.values()],
    expiries: [...expiries.values()],
    peers: [...peers.values()],
    presence: [...presence.values()],
    anchors: [...anchors.values()],
  };
}
