import {
  encodeFunctionData,
  keccak256,
  TransactionReceiptNotFoundError,
  type Hex,
  type PrivateKeyAccount,
  type TransactionReceipt,
} from 'viem';
import { sleep } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { ChainAccess } from './chain.js';
import type { AnchorContract } from './contract-registry.js';
import { RELAY_ANCHOR_ABI } from './relay-anchor-artifact.js';

/** What the submitter remembers of a batch between attempts (anchor_batches.nonce, .tx_hashes). */
export interface SentTransactions {
  nonce: number | undefined;
  readonly hashes: Hex[];
}

export interface ConfirmedAnchor {
  readonly txHash: Hex;
  readonly blockNumber: bigint;
  readonly blockHash: Hex;
  readonly blockTime: number;
  readonly gasUsed: bigint;
  readonly effectiveGasPrice: bigint;
}

export interface SubmitterOptions {
  readonly confirmations: number;
  readonly maxFeePerGas: bigint;
  readonly replaceAfterMs: number;
  /** How often the chain is asked whether a transaction was mined, and how far it has got. */
  readonly pollMs?: number;
}

/**
 * Sends a root to the contract and waits for its confirmations, one batch at a time, from one
 * signer. Transactions are signed here, with an explicit nonce and EIP-1559 fees, and `onSigned`
 * records each hash before it is broadcast: after a crash the batch's transactions are known. A
 * transaction not mined after `replaceAfterMs` is replaced by one with the same nonce and fees
 * raised by a quarter (nodes require at least an eighth), never sent again with a new nonce, so
 * at most one of them is ever mined; and the contract refuses a root it already holds.
 */
export class AnchorSubmitter {
  private readonly pollMs: number;

  constructor(
    private readonly access: ChainAccess,
    private readonly signer: PrivateKeyAccount,
    private readonly contract: AnchorContract,
    private readonly options: SubmitterOptions,
    private readonly log: Logger,
  ) {
    this.pollMs = options.pollMs ?? 500;
  }

  /** The block the root was anchored in, per the contract, or 0n if it holds no such root. */
  async anchoredAt(root: Hex): Promise<bigint> {
    return this.access.client.readContract({
      address: this.contract.address,
      abi: RELAY_ANCHOR_ABI,
      functionName: 'anchoredAt',
      args: [root],
    });
  }

  /**
   * Anchors `root` (unless the contract already holds it) and resolves once its transaction has
   * the configured confirmations. Chain failures are thrown; the caller backs off and calls again
   * with the same `sent`, which carries on where this call stopped.
   */
  async anchor(
    root: Hex,
    batchId: Hex,
    leafCount: number,
    sent: SentTransactions,
    onSigned: (sent: SentTransactions) => Promise<void>,
    signal: AbortSignal,
  ): Promise<ConfirmedAnchor> {
    const { client } = this.access;
    let lastSentAt = 0;
    let fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | undefined;
    for (;;) {
      if (signal.aborted) throw new Error('stopping');
      const mined = await this.findMined(root, sent.hashes);
      if (mined) {
        const confirmed = await this.confirm(root, mined, signal);
        if (confirmed) return confirmed;
        continue;
      }

      const confirmedNonce = await client.getTransactionCount({ address: this.signer.address, blockTag: 'latest' });
      if (sent.nonce !== undefined && confirmedNonce > sent.nonce) {
        // The nonce was used, and not by a transaction of this batch that anchored the root
        // (findMined saw none): one reverted or left the chain in a reorganisation. Start afresh.
        this.log.warn(
          { nonce: sent.nonce },
          'the anchoring nonce was used without anchoring the root; sending again with a new nonce',
        );
        sent.nonce = undefined;
        fees = undefined;
      }
      const due =
        sent.nonce === undefined || sent.hashes.length === 0 || Date.now() - lastSentAt >= this.options.replaceAfterMs;
      if (due) {
        const replacing = sent.nonce !== undefined && sent.hashes.length > 0;
        sent.nonce ??= await client.getTransactionCount({ address: this.signer.address, blockTag: 'pending' });
        fees = await this.nextFees(fees, replacing);
        const data = encodeFunctionData({
          abi: RELAY_ANCHOR_ABI,
          functionName: 'anchor',
          args: [root, batchId, BigInt(leafCount)],
        });
        // Against the latest block, not the pending one: there a transaction being replaced has
        // already anchored the root, and the estimate would revert.
        const gas = await client.estimateGas({
          account: this.signer.address,
          to: this.contract.address,
          data,
          blockTag: 'latest',
        });
        const serialized = await this.signer.signTransaction({
          type: 'eip1559',
          chainId: this.contract.chainId,
          to: this.contract.address,
          data,
          nonce: sent.nonce,
          gas: (gas * 5n) / 4n,
          ...fees,
        });
        const hash = keccak256(serialized);
        sent.hashes.push(hash);
        await onSigned(sent);
        lastSentAt = Date.now();
        try {
          await client.sendRawTransaction({ serializedTransaction: serialized });
          this.log.info(
            { tx_hash: hash, nonce: sent.nonce, max_fee_per_gas: fees.maxFeePerGas.toString() },
            replacing ? 'replaced the anchoring transaction' : 'sent the anchoring transaction',
          );
        } catch (error) {
          // "nonce too low" / "already known": an earlier transaction of this batch may be the one
          // mined; the next turn looks at all of them.
          this.log.warn({ tx_hash: hash, err: error }, 'the node refused the anchoring transaction');
        }
        // Look for its receipt at once: a node that mines on arrival already has it.
        continue;
      }
      await sleep(this.pollMs, signal);
    }
  }

  /** EIP-1559 fees: the node's estimate, or a quarter above the last ones for a replacement; capped. */
  private async nextFees(
    previous: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | undefined,
    replacing: boolean,
  ): Promise<{ maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }> {
    const estimate = await this.access.client.estimateFeesPerGas();
    let maxFeePerGas = estimate.maxFeePerGas;
    let maxPriorityFeePerGas = estimate.maxPriorityFeePerGas;
    if (replacing && previous) {
      const bump = (value: bigint) => value + value / 4n + 1n;
      maxFeePerGas = bump(previous.maxFeePerGas) > maxFeePerGas ? bump(previous.maxFeePerGas) : maxFeePerGas;
      maxPriorityFeePerGas =
        bump(previous.maxPriorityFeePerGas) > maxPriorityFeePerGas
          ? bump(previous.maxPriorityFeePerGas)
          : maxPriorityFeePerGas;
    }
    if (maxFeePerGas > this.options.maxFeePerGas) {
      this.log.warn(
        { wanted: maxFeePerGas.toString(), cap: this.options.maxFeePerGas.toString() },
        'the anchoring fee is at RELAY_ANCHOR_MAX_FEE_GWEI; the transaction may wait',
      );
      maxFeePerGas = this.options.maxFeePerGas;
    }
    if (maxPriorityFeePerGas > maxFeePerGas) maxPriorityFeePerGas = maxFeePerGas;
    return { maxFeePerGas, maxPriorityFeePerGas };
  }

  /** The successful receipt of a transaction that anchored `root`: one of ours, or found by the contract's log. */
  private async findMined(root: Hex, hashes: readonly Hex[]): Promise<TransactionReceipt | undefined> {
    const { client } = this.access;
    for (const hash of hashes) {
      const receipt = await this.receipt(hash);
      if (receipt?.status === 'success') return receipt;
    }
    const block = await this.anchoredAt(root);
    if (block === 0n) return undefined;
    // Anchored by a transaction this process did not record (a crash between broadcast and record).
    const logs = await client.getContractEvents({
      address: this.contract.address,
      abi: RELAY_ANCHOR_ABI,
      eventName: 'Anchored',
      args: { root },
      fromBlock: block,
      toBlock: block,
    });
    const hash = logs[0]?.transactionHash;
    return hash ? this.receipt(hash) : undefined;
  }

  private async receipt(hash: Hex): Promise<TransactionReceipt | undefined> {
    try {
      return await this.access.client.getTransactionReceipt({ hash });
    } catch (error) {
      if (error instanceof TransactionReceiptNotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * Waits until the receipt's block has the confirmations and is still the chain's block at that
   * height; undefined if the transaction left the chain meanwhile (a reorganisation).
   */
  private async confirm(
    root: Hex,
    receipt: TransactionReceipt,
    signal: AbortSignal,
  ): Promise<ConfirmedAnchor | undefined> {
    const { client } = this.access;
    for (;;) {
      const head = await client.getBlockNumber({ cacheTime: 0 });
      if (head - receipt.blockNumber + 1n >= BigInt(this.options.confirmations)) {
        const again = await this.findMined(root, [receipt.transactionHash]);
        if (!again || again.blockHash !== receipt.blockHash) {
          // Reorganised away before its confirmations: nothing was recorded; anchor again.
          this.log.warn(
            { tx_hash: receipt.transactionHash },
            'the anchoring transaction left the chain before its confirmations',
          );
          return undefined;
        }
        const block = await client.getBlock({ blockHash: receipt.blockHash });
        return {
          txHash: receipt.transactionHash,
          blockNumber: receipt.blockNumber,
          blockHash: receipt.blockHash,
          blockTime: Number(block.timestamp) * 1000,
          gasUsed: receipt.gasUsed,
          effectiveGasPrice: receipt.effectiveGasPrice,
        };
      }
      await sleep(this.pollMs, signal);
    }
  }
}
