import { Type, type Static } from '@sinclair/typebox';
import { Address, Timestamp, Uuid } from './primitives.js';

const Hex = (bytes?: number) =>
  Type.Unsafe<`0x${string}`>(
    Type.String({ pattern: bytes === undefined ? '^0x[0-9a-fA-F]*$' : `^0x[0-9a-fA-F]{${bytes * 2}}$` }),
  );

export const LeafFields = Type.Object({
  message_id: Uuid,
  content_sha256: Type.String(),
  from_address: Address,
  to_address: Address,
  /** Milliseconds since the epoch. */
  accepted_at: Type.Integer({ minimum: 0 }),
});
export type LeafFields = Static<typeof LeafFields>;

/** What GET /api/v1/messages/{id}/proof returns, and what `relay verify-proof` checks. */
export const MessageProof = Type.Object(
  {
    leaf_version: Type.Integer(),
    leaf: LeafFields,
    leaf_hash: Hex(32),
    leaf_index: Type.Integer({ minimum: 0 }),
    tree_size: Type.Integer({ minimum: 1 }),
    /** Sibling hashes from the leaf up (RFC 6962 audit path). */
    path: Type.Array(Hex(32)),
    root: Hex(32),
    batch_id: Uuid,
    chain_id: Type.Integer(),
    contract: Hex(20),
    tx_hash: Hex(32),
    block_number: Type.Integer({ minimum: 0 }),
    block_hash: Hex(32),
    /** The block's time (ISO 8601): the message existed, as committed, by then. */
    block_time: Timestamp,
  },
  { $id: 'MessageProof' },
);
export type MessageProof = Static<typeof MessageProof>;
