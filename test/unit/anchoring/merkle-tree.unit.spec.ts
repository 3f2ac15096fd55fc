import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { encodeLeaf, leafHash, type LeafFields } from '../../../src/anchoring/leaf.js';
import { MerkleTree, nodeHash, rootFromPath } from '../../../src/anchoring/merkle-tree.js';

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const leafOf = (i: number) => sha256(Buffer.from([0x00]), Buffer.from(`leaf ${i}`));

const sample: LeafFields = {
  message_id: '0F8E2A4C-1B2D-4E3F-8A9B-0C1D2E3F4A5B',
  content_sha256: 'n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg',
  from_address: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
  to_address: 'kYSc5JjKHzVYIPX1eb0z9KhQA4-SdVRoe7H1y1UeQrQ',
  accepted_at: 1_764_585_000_123,
};

describe('leaf encoding', () => {
  it('lays the fields out byte for byte as docs/guides/anchoring.md says', () => {
    const str = (s: string) => Buffer.concat([Buffer.from([0, Buffer.byteLength(s)]), Buffer.from(s)]);
    const time = Buffer.alloc(8);
    time.writeBigUInt64BE(1_764_585_000_123n);
    const expected = Buffer.concat([
      Buffer.from([0x01]),
      str('0f8e2a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b'),
      str(sample.content_sha256),
      str(sample.from_address),
      str(sample.to_address),
      time,
    ]);
    expect(encodeLeaf(sample).equals(expected)).toBe(true);
    expect(leafHash(sample).equals(sha256(Buffer.from([0x00]), expected))).toBe(true);
    // The worked example in the guide: anyone can reproduce it with sha256sum.
    expect(leafHash(sample).toString('hex')).toBe(LEAF_EXAMPLE_HASH);
  });

  it('changes the hash when any field changes', () => {
    const base = leafHash(sample);
    for (const change of [
      { message_id: '0f8e2a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5c' },
      { content_sha256: `${sample.content_sha256.slice(0, -1)}h` },
      { from_address: sample.to_address, to_address: sample.from_address },
      { accepted_at: sample.accepted_at + 1 },
    ]) {
      expect(leafHash({ ...sample, ...change }).equals(base)).toBe(false);
    }
  });

  it('keeps field boundaries: moving a character from one field to the next changes the leaf', () => {
    const a = { ...sample, from_address: 'ab', to_address: 'c' };
    const b = { ...sample, from_address: 'a', to_address: 'bc' };
    expect(encodeLeaf(a).equals(encodeLeaf(b))).toBe(false);
  });

  it('refuses a time that is not whole milliseconds', () => {
    expect(() => encodeLeaf({ ...sample, accepted_at: 1.5 })).toThrow(RangeError);
  });
});

describe('Merkle tree (RFC 6962)', () => {
  it('hashes one leaf as itself and two as SHA-256(0x01 || left || right)', () => {
    expect(new MerkleTree([leafOf(0)]).root.equals(leafOf(0))).toBe(true);
    expect(new MerkleTree([leafOf(0), leafOf(1)]).root.equals(sha256(Buffer.from([0x01]), leafOf(0), leafOf(1)))).toBe(
      true,
    );
  });

  it('splits an odd tree at the largest power of two, without duplicating a leaf', () => {
    const [a, b, c] = [leafOf(0), leafOf(1), leafOf(2)];
    expect(new MerkleTree([a, b, c]).root.equals(nodeHash(nodeHash(a, b), c))).toBe(true);
    expect(new MerkleTree([a, b, c]).root.equals(new MerkleTree([a, b, c, c]).root)).toBe(false);
  });

  it('gives every leaf of every size a path that leads to the root, and only for its own index', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), (size, pick) => {
        const leaves = Array.from({ length: size }, (_, i) => leafOf(i));
        const tree = new MerkleTree(leaves);
        const index = pick % size;
        const path = tree.path(index);
        expect(rootFromPath(leaves[index] as Buffer, index, size, path)?.equals(tree.root)).toBe(true);
        if (size > 1) {
          const other = (index + 1) % size;
          expect(rootFromPath(leaves[index] as Buffer, other, size, path)?.equals(tree.root) ?? false).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rejects an altered leaf, an altered path step, a missing step and a size the path does not fit', () => {
    const leaves = Array.from({ length: 11 }, (_, i) => leafOf(i));
    const tree = new MerkleTree(leaves);
    const path = tree.path(6);
    const leaf = leaves[6] as Buffer;
    expect(rootFromPath(leaf, 6, 11, path)?.equals(tree.root)).toBe(true);
    expect(rootFromPath(leafOf(99), 6, 11, path)?.equals(tree.root)).toBe(false);
    const flipped = path.map((p, i) => (i === 1 ? Buffer.from(p.map((byte, j) => (j === 0 ? byte ^ 1 : byte))) : p));
    expect(rootFromPath(leaf, 6, 11, flipped)?.equals(tree.root)).toBe(false);
    expect(rootFromPath(leaf, 6, 11, path.slice(1))).toBeUndefined();
    expect(rootFromPath(leaf, 6, 7, path)).toBeUndefined(); // a tree of 7 puts leaf 6 two levels up, not four
    expect(rootFromPath(leaf, 11, 11, path)).toBeUndefined();
  });

  it('has no tree without leaves', () => {
    expect(() => new MerkleTree([])).toThrow(RangeError);
  });
});

const LEAF_EXAMPLE_HASH = 'ec3cd5018e8ee171e7f7da1266aa678f4c9fe315b28471a9a97be42e16fd3fc4';
