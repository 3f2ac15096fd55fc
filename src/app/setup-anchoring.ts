import type { Resources } from './resources.js';
import { UsageError } from '../errors/usage-error.js';
import { chainAt, FatalAnchorError, loadSigner } from '../anchoring/chain.js';
import { resolveContract } from '../anchoring/contract-registry.js';

/**
 * `relay setup`'s anchoring step: with anchoring configured, find, check or deploy the contract
 * (once: the address is recorded in anchor_contracts) and say where it is.
 */
export async function setupAnchoring(resources: Resources, print: (line: string) => void): Promise<void> {
  const anchor = resources.config.anchor;
  if (!anchor) return;
  const contract = await resolveContract(
    resources.pool,
    chainAt(anchor.rpcUrl, anchor.chainId),
    loadSigner(anchor),
    anchor,
    resources.log,
  ).catch((error: unknown) => {
    // A setting to fix: say so in a sentence, not with a stack.
    throw error instanceof FatalAnchorError ? new UsageError(error.message) : error;
  });
  print(`anchor contract on chain ${contract.chainId}: ${contract.address}`);
}
