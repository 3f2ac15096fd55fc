import { readFileSync } from 'node:fs';
import { createPublicClient, defineChain, http, type Chain, type PublicClient } from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import type { AnchorConfig } from '../config/config.js';

/*
 * The chain client. viem rather than ethers: its clients are typed from the contract's ABI (the
 * generated artifact is `as const`, so a wrong function name or argument does not compile), it
 * signs EIP-1559 transactions locally with an explicit nonce and fees, which is what replacing a
 * stuck transaction needs, and its http transport is plain fetch, so https endpoints need nothing
 * more. Nothing here assumes the local chain: URL, chain id, key, contract and fees are settings.
 */

/** How long one JSON-RPC call may take before it counts as the chain being unreachable. */
const RPC_TIMEOUT_MS = 10_000;

export interface ChainAccess {
  readonly chain: Chain;
  readonly client: PublicClient;
}

/** A chain described only by its id and RPC URL: viem needs no more to sign and call. */
export function chainAt(rpcUrl: string, chainId: number): ChainAccess {
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  // No retries inside viem: the anchor role backs off itself, and verify-proof reports at once.
  const client = createPublicClient({
    chain,
    transport: http(rpcUrl, { timeout: RPC_TIMEOUT_MS, retryCount: 0 }),
    cacheTime: 0,
  }) as PublicClient;
  return { chain, client };
}

/** The anchoring signer, from RELAY_ANCHOR_PRIVATE_KEY or the file RELAY_ANCHOR_KEY_FILE names. */
export function loadSigner(config: AnchorConfig): PrivateKeyAccount {
  const raw = (config.privateKey || readFileSync(config.keyFile, 'utf8')).trim();
  const hex = raw.startsWith('0x') ? raw : `0x${raw}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error(
      `the anchoring signer key ${config.privateKey ? 'in RELAY_ANCHOR_PRIVATE_KEY' : `in ${config.keyFile}`} is not 32 bytes of hex`,
    );
  }
  return privateKeyToAccount(hex as `0x${string}`);
}

/** Checks that the RPC endpoint serves the configured chain. */
export async function assertChainId(access: ChainAccess, expected: number): Promise<void> {
  const actual = await access.client.getChainId();
  if (actual !== expected) {
    throw new FatalAnchorError(
      `the RPC endpoint serves chain ${actual}, but RELAY_ANCHOR_CHAIN_ID is ${expected}; anchoring refuses to write to another chain`,
    );
  }
}

/** A failure no retry can fix: a wrong setting, or a log that no longer gives the leaves written ahead. */
export class FatalAnchorError extends Error {
  override readonly name = 'FatalAnchorError';
}
