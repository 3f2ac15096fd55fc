import { createHash } from 'node:crypto';

/*
 * The Merkle tree of RFC 6962 (Certificate Transparency) section 2.1, over leaf hashes that
 * already carry their 0x00 prefix (leaf.ts):
 *
 *   MTH({d0})       = leaf hash of d0
 *   MTH(D[0:n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   for n > 1,
 *                     k the largest power of two smaller than n
 *
 * So a tree of any size is defined without padding or duplicated leaves (duplicating the last
 * leaf, as Bitcoin does, lets two different lists share a root). An inclusion proof is the list of
 * sibling hashes from the leaf up (RFC 6962 2.1.1 "audit path"); it is checked with the leaf's
 * index and the tree size by the algorithm of RFC 9162 section 2.1.3.2.
 */

const NODE_PREFIX = Buffer.from([0x01]);

export const nodeHash = (left: Buffer, right: Buffer): Buffer =>
  createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();

const splitPoint = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

/** A tree over a fixed list of leaf hashes. Builds its levels once; root and paths read them. */
export class MerkleTree {
  readonly root: Buffer;

  constructor(readonly leaves: readonly Buffer[]) {
    if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
    this.root = this.hashRange(0, leaves.length);
  }

  get size(): number {
    return this.leaves.length;
  }

  /** The audit path of leaf `index`: sibling hashes from the bottom up. */
  path(index: number): Buffer[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.leaves.length)
      throw new RangeError(`no leaf ${index} in a tree of ${this.leaves.length}`);
    const path: Buffer[] = [];
    this.collectPath(index, 0, this.leaves.length, path);
    return path;
  }

  private collectPath(index: number, start: number, end: number, out: Buffer[]): void {
    const n = end - start;
    if (n === 1) return;
    const k = splitPoint(n);
    if (index - start < k) {
      this.collectPath(index, start, start + k, out);
      out.push(this.hashRange(start + k, end));
    } else {
      this.collectPath(index, start + k, end, out);
      out.push(this.hashRange(start, start + k));
    }
  }

  // Memoized by range: a tree of n leaves has fewer than 2n distinct subtrees.
  private readonly memo = new Map<number, Buffer>();

  private hashRange(start: number, end: number): Buffer {
    if (end - start === 1) return this.leaves[start] as Buffer;
    const key = start * 0x100000000 + end;
    const known = this.memo.get(key);
    if (known) return known;
    const k = splitPoint(end - start);
    const hash = nodeHash(this.hashRange(start, start + k), this.hashRange(start + k, end));
    this.memo.set(key, hash);
    return hash;
  }
}

/**
 * The root that an audit path proves for a leaf hash at `index` in a tree of `size` leaves
 * (RFC 9162 2.1.3.2), or undefined if the path does not fit that index and size.
 */
export function rootFromPath(leaf: Buffer, index: number, size: number, path: readonly Buffer[]): Buffer | undefined {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}
