import { getAddress, type Address, type Hex, type PrivateKeyAccount } from 'viem';
import { createWalletClient, http } from 'viem';
import type { AnchorConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import type { Pool } from '../postgres/pool.js';
import { assertChainId, FatalAnchorError, type ChainAccess } from './chain.js';
import { RELAY_ANCHOR_ABI, RELAY_ANCHOR_BYTECODE } from './relay-anchor-artifact.js';

// Any fixed number: two processes that find no contract take turns, so only one deploys.
const DEPLOY_LOCK = 0x616e63686f72;

export interface AnchorContract {
  readonly address: Address;
  readonly chainId: number;
}

/**
 * The RelayAnchor contract this relay anchors to on the configured chain. A configured address
 * (RELAY_ANCHOR_CONTRACT, for real networks) is checked to hold code and recorded; otherwise the
 * address recorded in `anchor_contracts` is used, and if there is none the contract is deployed
 * once and recorded. A development chain that was restarted (its genesis block differs from the
 * one recorded) has lost the contract, so it is deployed again there.
 */
export async function resolveContract(
  pool: Pool,
  access: ChainAccess,
  signer: PrivateKeyAccount,
  config: AnchorConfig,
  log: Logger,
): Promise<AnchorContract> {
  await assertChainId(access, config.chainId);
  const { client } = access;
  const genesis = (await client.getBlock({ blockNumber: 0n })).hash;
  const hasCode = async (address: Address) => ((await client.getCode({ address })) ?? '0x') !== '0x';

  if (config.contract) {
    const address = getAddress(config.contract);
    if (!(await hasCode(address)))
      throw new FatalAnchorError(`RELAY_ANCHOR_CONTRACT ${address} holds no code on chain ${config.chainId}`);
    await record(pool, config.chainId, genesis, address, null);
    return { address, chainId: config.chainId };
  }

  const session = await pool.connect();
  try {
    await session.query('SELECT pg_advisory_lock($1)', [DEPLOY_LOCK]);
    const { rows } = await session.query<{ address: string; genesis_hash: string }>(
      'SELECT address, genesis_hash FROM anchor_contracts WHERE chain_id = $1',
      [config.chainId],
    );
    const known = rows[0];
    if (known && known.genesis_hash === genesis && (await hasCode(getAddress(known.address)))) {
      return { address: getAddress(known.address), chainId: config.chainId };
    }
    if (known)
      log.warn(
        { chain_id: config.chainId, address: known.address },
        'the recorded anchor contract is gone (the chain was reset); deploying a new one',
      );
    const wallet = createWalletClient({
      account: signer,
      chain: access.chain,
      transport: http(access.chain.rpcUrls.default.http[0]),
    });
    const hash = await wallet.deployContract({ abi: RELAY_ANCHOR_ABI, bytecode: RELAY_ANCHOR_BYTECODE, args: [] });
    const receipt = await client.waitForTransactionReceipt({
      hash,
      confirmations: config.confirmations,
      timeout: 120_000,
    });
    if (receipt.status !== 'success' || !receipt.contractAddress)
      throw new Error(`deploying RelayAnchor failed in transaction ${hash}`);
    const address = getAddress(receipt.contractAddress);
    await record(session, config.chainId, genesis, address, hash);
    log.info(
      { chain_id: config.chainId, address, tx_hash: hash, gas_used: receipt.gasUsed.toString() },
      'deployed the anchor contract',
    );
    return { address, chainId: config.chainId };
  } finally {
    await session.query('SELECT pg_advisory_unlock($1)', [DEPLOY_LOCK]).catch(() => undefined);
    session.release();
  }
}

async function record(
  db: Pick<Pool, 'query'>,
  chainId: number,
  genesis: Hex,
  address: Address,
  tx: Hex | null,
): Promise<void> {
  await db.query(
    `INSERT INTO anchor_contracts (chain_id, genesis_hash, address, deploy_tx_hash) VALUES ($1, $2, $3, $4)
     ON CONFLICT (chain_id) DO UPDATE SET genesis_hash = EXCLUDED.genesis_hash, address = EXCLUDED.address,
       deploy_tx_hash = EXCLUDED.deploy_tx_hash, recorded_at = now()`,
    [chainId, genesis, address, tx],
  );
}
