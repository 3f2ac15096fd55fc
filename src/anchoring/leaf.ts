import { createHash } from 'node:crypto';
import type { LeafFields } from '../api/proof.js';

/**
 * The leaf of an anchoring tree: what one accepted message commits to. Byte for byte
 * (docs/guides/anchoring.md):
 *
 *   leaf_data = 0x01                      format version
 *            || str(message_id)           lower-case UUID, as in the API
 *            || str(content_sha256)       base64url SHA-256 of the ciphertext, as signed
 *            || str(from_address)         sender's address (base64url key thumbprint)
 *            || str(to_address)           recipient's address
 *            || u64be(accepted_at)        milliseconds since the epoch when the relay accepted it
 *   str(s)    = u16be(byte length of UTF-8 s) || UTF-8 s
 *   leaf_hash = SHA-256(0x00 || leaf_data)
 *
 * The 0x00 prefix separates leaves from interior nodes (0x01), as in RFC 6962, so no leaf can be
 * passed off as a node or the reverse; the version byte leaves room for another leaf format.
 * Strings are length-prefixed, so no two different field lists encode to the same bytes.
 */
// The leaf's members are part of the wire contract: a proof carries them (src/api/proof.ts).
export type { LeafFields };

export const LEAF_VERSION = 0x01;
const LEAF_PREFIX = Buffer.from([0x00]);

function str(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > 0xffff) throw new RangeError('a leaf field is longer than 65535 bytes');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** The bytes a leaf commits to (leaf_data above). */
export function encodeLeaf(leaf: LeafFields): Buffer {
  if (!Number.isSafeInteger(leaf.accepted_at) || leaf.accepted_at < 0)
    throw new RangeError('accepted_at must be a whole number of milliseconds');
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(leaf.accepted_at));
  return Buffer.concat([
    Buffer.from([LEAF_VERSION]),
    str(leaf.message_id.toLowerCase()),
    str(leaf.content_sha256),
    str(leaf.from_address),
    str(leaf.to_address),
    time,
  ]);
}

/** SHA-256(0x00 || leaf_data). */
export const leafHash = (leaf: LeafFields): Buffer =>
  createHash('sha256').update(LEAF_PREFIX).update(encodeLeaf(leaf)).digest();
