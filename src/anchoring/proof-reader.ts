import type { Hex } from 'viem';
import { AppError } from '../errors/app-error.js';
import type { Pool } from '../postgres/pool.js';
import { leafHash, LEAF_VERSION } from './leaf.js';
import { MerkleTree } from './merkle-tree.js';
import type { MessageProof } from './proof.js';

const HASH_BYTES = 32;
const hex = (bytes: Buffer): Hex => `0x${bytes.toString('hex')}`;

/** A message's participants, for the route to authorize the caller before it is shown a proof. */
export interface ProofSubject {
  readonly sender: string;
  readonly recipient: string;
}

/** Reads a message's Merkle proof from the read model (anchors and message_anchors). */
export class ProofReader {
  constructor(private readonly pool: Pool) {}

  /** The message's sender and recipient; 404 message_not_found if the read model has no such message. */
  async subject(messageId: string): Promise<ProofSubject> {
    const { rows } = await this.pool.query<{ sender_address: string; receiver_address: string }>(
      'SELECT sender_address, receiver_address FROM messages WHERE id = $1',
      [messageId],
    );
    const row = rows[0];
    if (!row)
      throw new AppError(
        'message_not_found',
        `No message ${messageId} is in the read model (never sent, not projected yet, or purged).`,
      );
    return { sender: row.sender_address, recipient: row.receiver_address };
  }

  /** The proof; 409 not_anchored_yet until the message's batch is anchored and projected. */
  async proof(messageId: string): Promise<MessageProof> {
    const { rows } = await this.pool.query<{
      sender_address: string;
      receiver_address: string;
      content_sha256: string;
      accepted_at: Date;
      leaf_index: number | null;
      batch_id: string | null;
      root: Hex;
      tree_size: number;
      chain_id: string;
      contract: Hex;
      tx_hash: Hex;
      block_number: string;
      block_hash: Hex;
      block_time: Date;
      leaf_hashes: Buffer;
    }>(
      `SELECT m.sender_address, m.receiver_address, m.content_sha256, m.accepted_at, ma.leaf_index, a.batch_id, a.root, a.tree_size,
              a.chain_id, a.contract, a.tx_hash, a.block_number, a.block_hash, a.block_time, a.leaf_hashes
         FROM messages m
         LEFT JOIN message_anchors ma ON ma.message_id = m.id
         LEFT JOIN anchors a ON a.batch_id = ma.batch_id
        WHERE m.id = $1`,
      [messageId],
    );
    const row = rows[0];
    if (!row) throw new AppError('message_not_found', `No message ${messageId} is in the read model.`);
    if (row.batch_id === null || row.leaf_index === null) {
      throw new AppError(
        'not_anchored_yet',
        'The message is not anchored yet: batches are anchored every RELAY_ANCHOR_INTERVAL_SECONDS, then wait for their confirmations. Try again later.',
      );
    }
    const leaves: Buffer[] = [];
    for (let i = 0; i < row.tree_size; i++) leaves.push(row.leaf_hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES));
    const tree = new MerkleTree(leaves);
    const leaf = {
      message_id: messageId.toLowerCase(),
      content_sha256: row.content_sha256,
      from_address: row.sender_address,
      to_address: row.receiver_address,
      accepted_at: row.accepted_at.getTime(),
    };
    const hash = leafHash(leaf);
    // The row must be the message that was anchored: the leaf stored at its index is its hash.
    if (!hash.equals(leaves[row.leaf_index] ?? Buffer.alloc(0))) {
      throw new AppError(
        'internal_error',
        `The anchored leaf of message ${messageId} does not match the read model's row.`,
      );
    }
    return {
      leaf_version: LEAF_VERSION,
      leaf,
      leaf_hash: hex(hash),
      leaf_index: row.leaf_index,
      tree_size: row.tree_size,
      path: tree.path(row.leaf_index).map(hex),
      root: row.root,
      batch_id: row.batch_id,
      chain_id: Number(row.chain_id),
      contract: row.contract,
      tx_hash: row.tx_hash,
      block_number: Number(row.block_number),
      block_hash: row.block_hash,
      block_time: row.block_time.toISOString(),
    };
  }
}
