import { chainAt } from '../anchoring/chain.js';
import { checkProofMath, checkProofOnChain, type ChainCheck, type MessageProof } from '../anchoring/proof.js';

export type { ChainCheck, MessageProof } from '../anchoring/proof.js';
export { ProofError } from '../anchoring/proof.js';

/**
 * Checks a message's anchoring proof against the chain alone, over `rpcUrl` (any node of that
 * chain, not the relay): the leaf's fields hash to the leaf, the path leads to the root, and the
 * chain holds a successful transaction to the contract that anchored that root. `contract` pins
 * the relay's published contract address. Resolves with the anchoring block's confirmations and
 * time; rejects with ProofError if the proof does not hold.
 */
export async function verifyProof(
  proof: MessageProof,
  options: { readonly rpcUrl: string; readonly contract?: string },
): Promise<ChainCheck> {
  checkProofMath(proof);
  return checkProofOnChain(proof, chainAt(options.rpcUrl, proof.chain_id), options.contract);
}
