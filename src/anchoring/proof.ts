import { getAddress, isAddressEqual, type Hex } from 'viem';
import type { MessageProof } from '../api/proof.js';
import { RELAY_ANCHOR_ABI } from './relay-anchor-artifact.js';
import type { ChainAccess } from './chain.js';
import { leafHash, LEAF_VERSION } from './leaf.js';
import { rootFromPath } from './merkle-tree.js';
import { decodeEventLog } from 'viem';

/** What GET /api/v1/messages/{id}/proof returns, and what `relay verify-proof` checks (its schema is in src/api). */
export type { MessageProof };

const hex = (bytes: Buffer): Hex => `0x${bytes.toString('hex')}`;
const bytes32 = (value: string, what: string): Buffer => {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new ProofError(`${what} is not 32 bytes of 0x-prefixed hex`);
  return Buffer.from(value.slice(2), 'hex');
};

/** A proof that does not hold, with the reason. */
export class ProofError extends Error {
  override readonly name = 'ProofError';
}

/**
 * The offline half of a check: the leaf's hash is recomputed from its fields, and the path
 * folds it into the claimed root. Throws ProofError if either fails.
 */
export function checkProofMath(proof: MessageProof): void {
  if (proof.leaf_version !== LEAF_VERSION)
    throw new ProofError(`leaf format ${proof.leaf_version} is not known (this verifier reads ${LEAF_VERSION})`);
  const computed = leafHash(proof.leaf);
  if (proof.leaf_hash !== undefined && hex(computed) !== proof.leaf_hash.toLowerCase())
    throw new ProofError('the leaf fields do not hash to leaf_hash');
  const path = proof.path.map((p, i) => bytes32(p, `path[${i}]`));
  const root = rootFromPath(computed, proof.leaf_index, proof.tree_size, path);
  if (!root) throw new ProofError(`the path does not fit leaf ${proof.leaf_index} of a tree of ${proof.tree_size}`);
  if (!root.equals(bytes32(proof.root, 'root'))) throw new ProofError('the leaf and path do not lead to the root');
}

export interface ChainCheck {
  /** Blocks on top of the anchoring block, itself included. */
  readonly confirmations: number;
  readonly blockTime: string;
}

/**
 * The online half: over the chain's own JSON-RPC, with nothing from the relay, the transaction
 * succeeded, was sent to the contract, is in the claimed block (still on the chain), and emitted
 * Anchored(root); and the contract itself reports the root anchored in that block.
 */
export async function checkProofOnChain(
  proof: MessageProof,
  access: ChainAccess,
  expectedContract?: string,
): Promise<ChainCheck> {
  const { client } = access;
  const chainId = await client.getChainId();
  if (chainId !== proof.chain_id)
    throw new ProofError(`the RPC endpoint serves chain ${chainId}, the proof names chain ${proof.chain_id}`);
  const contract = getAddress(proof.contract);
  if (expectedContract && !isAddressEqual(contract, getAddress(expectedContract)))
    throw new ProofError(`the proof names contract ${contract}, not the expected ${expectedContract}`);
  const receipt = await client.getTransactionReceipt({ hash: proof.tx_hash }).catch(() => undefined);
  if (!receipt) throw new ProofError(`transaction ${proof.tx_hash} is not on chain ${chainId}`);
  if (receipt.status !== 'success') throw new ProofError(`transaction ${proof.tx_hash} failed`);
  if (!receipt.to || !isAddressEqual(receipt.to, contract))
    throw new ProofError(`transaction ${proof.tx_hash} was not sent to ${contract}`);
  if (receipt.blockHash !== proof.block_hash || Number(receipt.blockNumber) !== proof.block_number)
    throw new ProofError('the transaction is not in the block the proof names');
  const root = proof.root.toLowerCase();
  const anchoredHere = receipt.logs.some((log) => {
    if (!isAddressEqual(log.address, contract)) return false;
    try {
      const event = decodeEventLog({ abi: RELAY_ANCHOR_ABI, data: log.data, topics: log.topics });
      return event.eventName === 'Anchored' && event.args.root.toLowerCase() === root;
    } catch {
      return false;
    }
  });
  if (!anchoredHere) throw new ProofError(`transaction ${proof.tx_hash} did not anchor root ${proof.root}`);
  const at = await client.readContract({
    address: contract,
    abi: RELAY_ANCHOR_ABI,
    functionName: 'anchoredAt',
    args: [proof.root],
  });
  if (at !== receipt.blockNumber)
    throw new ProofError(`the contract reports the root anchored in block ${at}, not ${receipt.blockNumber}`);
  const [head, block] = await Promise.all([
    client.getBlockNumber({ cacheTime: 0 }),
    client.getBlock({ blockHash: receipt.blockHash }),
  ]);
  return {
    confirmations: Number(head - receipt.blockNumber + 1n),
    blockTime: new Date(Number(block.timestamp) * 1000).toISOString(),
  };
}
