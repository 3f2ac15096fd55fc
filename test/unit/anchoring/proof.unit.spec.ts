import { leafHash, type LeafFields } from '../../../src/anchoring/leaf.js';
import { MerkleTree } from '../../../src/anchoring/merkle-tree.js';
import { checkProofMath, ProofError, type MessageProof } from '../../../src/anchoring/proof.js';
import { runVerifyProof } from '../../../src/cli/verify-proof.js';
import { UsageError } from '../../../src/errors/usage-error.js';

const hex = (bytes: Buffer) => `0x${bytes.toString('hex')}` as const;
const leafOf = (i: number): LeafFields => ({
  message_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  content_sha256: `sha-${i}`,
  from_address: 'A'.repeat(43),
  to_address: 'B'.repeat(43),
  accepted_at: 1_764_585_000_000 + i,
});

/** A proof of leaf 5 of 9, as the API gives it (the chain fields are not checked offline). */
function proofOf(index = 5, size = 9): MessageProof {
  const tree = new MerkleTree(Array.from({ length: size }, (_, i) => leafHash(leafOf(i))));
  return {
    leaf_version: 1,
    leaf: leafOf(index),
    leaf_hash: hex(leafHash(leafOf(index))),
    leaf_index: index,
    tree_size: size,
    path: tree.path(index).map(hex),
    root: hex(tree.root),
    batch_id: '00000000-0000-4000-8000-000000000000',
    chain_id: 31337,
    contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    tx_hash: `0x${'1'.repeat(64)}`,
    block_number: 1,
    block_hash: `0x${'2'.repeat(64)}`,
    block_time: '2026-12-01T00:00:00.000Z',
  };
}

describe('checking a proof offline', () => {
  it('accepts the proof as built', () => {
    expect(() => checkProofMath(proofOf())).not.toThrow();
    expect(() => checkProofMath(proofOf(8, 9))).not.toThrow();
    expect(() => checkProofMath(proofOf(0, 1))).not.toThrow();
  });

  it('refuses a changed leaf field, whether or not leaf_hash is changed with it', () => {
    const proof = proofOf();
    const changed = { ...proof, leaf: { ...proof.leaf, to_address: 'C'.repeat(43) } };
    expect(() => checkProofMath(changed)).toThrow(ProofError);
    expect(() => checkProofMath({ ...changed, leaf_hash: hex(leafHash(changed.leaf)) })).toThrow(
      'do not lead to the root',
    );
  });

  it('refuses a changed path step, a reordered path and a wrong index', () => {
    const proof = proofOf();
    const [first, ...rest] = proof.path as [string, ...string[]];
    expect(() =>
      checkProofMath({
        ...proof,
        path: [
          `${first.slice(0, -1)}${first.endsWith('0') ? '1' : '0'}` as `0x${string}`,
          ...(rest as `0x${string}`[]),
        ],
      }),
    ).toThrow(ProofError);
    expect(() => checkProofMath({ ...proof, path: [...proof.path].reverse() })).toThrow(ProofError);
    expect(() => checkProofMath({ ...proof, leaf_index: 4 })).toThrow(ProofError);
    expect(() => checkProofMath({ ...proof, path: [...proof.path, proof.root] })).toThrow(ProofError);
  });

  it('refuses a leaf format it does not know and a path step that is not 32 bytes', () => {
    expect(() => checkProofMath({ ...proofOf(), leaf_version: 2 })).toThrow('leaf format 2');
    expect(() => checkProofMath({ ...proofOf(), path: ['0x1234'] })).toThrow('path[0]');
  });
});

describe('relay verify-proof arguments', () => {
  const lines: string[] = [];
  const print = (line: string) => lines.push(line);

  it('needs an RPC URL and a proof file, and says so', async () => {
    await expect(runVerifyProof(['proof.json'], print, {})).rejects.toThrow(UsageError);
    await expect(runVerifyProof(['--rpc', 'http://127.0.0.1:8545'], print, {})).rejects.toThrow('name the proof file');
    await expect(runVerifyProof(['--rpc', 'ftp://x', 'p.json'], print, {})).rejects.toThrow('http:// or https://');
    await expect(
      runVerifyProof(['--rpc', 'http://x', '--min-confirmations', '0', 'p.json'], print, {}),
    ).rejects.toThrow('at least 1');
  });

  it('prints its usage for --help', async () => {
    expect(await runVerifyProof(['--help'], print, {})).toBe(0);
    expect(lines.join('\n')).toContain('usage: relay verify-proof');
  });
});
