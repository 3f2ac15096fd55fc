import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { Hex, PrivateKeyAccount } from 'viem';
import type { AnchorConfig } from '../config/config.js';
import { UndecodableEventError, type EventCodec } from '../events/codec.js';
import type { AnchorCommitted, AnchoredRange, MessageSent } from '../events/types.js';
import type { KafkaClient } from '../kafka/client.js';
import { sleep, type Service } from '../lifecycle/service.js';
import { exponentialBackoff, withRetry } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Pool } from '../postgres/pool.js';
import { AnchorSubmitter, type SentTransactions } from './anchor-submitter.js';
import { BatchStore, type StoredBatch } from './batch-store.js';
import { chainAt, loadSigner, FatalAnchorError, type ChainAccess } from './chain.js';
import { resolveContract, type AnchorContract } from './contract-registry.js';
import { leafHash } from './leaf.js';
import { MerkleTree } from './merkle-tree.js';

const { Partitioners } = kafkajs;

/** One mailbox record as the anchor role holds it until its batch is anchored. */
interface HeldRecord {
  readonly partition: number;
  readonly offset: number;
  /** The message, for a MessageSent record; other records only move the range. */
  readonly message?: MessageSent;
  readonly receivedAt: number;
}

/** A cut batch: its records in leaf order, its ranges, tree and id. */
interface Batch {
  readonly batchId: string;
  readonly ranges: AnchoredRange[];
  readonly messages: MessageSent[];
  readonly tree: MerkleTree | undefined;
}

export interface AnchorServiceOptions {
  readonly groupId: string;
  readonly mailboxTopic: string;
  readonly anchorsTopic: string;
  readonly config: AnchorConfig;
}

/** How many anchored batches `anchored` keeps: a role runs for months. */
const ANCHORED_KEPT = 1000;

const hex = (bytes: Buffer): Hex => `0x${bytes.toString('hex')}`;
const uuidBytes16 = (uuid: string): Hex => `0x${uuid.replace(/-/g, '')}`;

/**
 * The anchor role (docs/guides/anchoring.md). Reads MessageSent from the mailbox topic as the
 * consumer group `<prefix>.anchor`, cuts a batch every RELAY_ANCHOR_INTERVAL_SECONDS or
 * RELAY_ANCHOR_MAX_MESSAGES messages, whichever comes first, and for each batch, in order:
 *
 *   1. writes it ahead in `anchor_batches` (log ranges and root), before any transaction;
 *   2. sends the root to the contract (unless the contract already holds it), replacing a stuck
 *      transaction rather than sending another, and waits for the confirmations;
 *   3. writes AnchorCommitted (event id = batch id) to the anchors topic, acknowledged by all
 *      in-sync replicas; marks the batch committed; then commits the Kafka offsets.
 *
 * After a crash at any step, the restarted role finds the open batch, reads exactly its ranges
 * again (so the same leaves and root), and carries on from step 2: the root is sent only if the
 * contract does not hold it. Records below the end of a committed batch are skipped even if the
 * Kafka offsets were not committed yet. So every message is anchored in exactly one tree; a
 * crash between steps 3 and its marking at most writes the same AnchorCommitted again, which
 * the projector applies idempotently. One signer sends one batch at a time, so one process
 * anchors per consumer group: a second one waits on a Postgres advisory lock as a standby.
 */
export class AnchorService implements Service {
  readonly name = 'anchor';
  private readonly store: BatchStore;
  private readonly consumer;
  private readonly producer;
  private readonly held = new Map<number, HeldRecord[]>();
  private heldCount = 0;
  private readonly maxHeld: number;
  /** Per partition, the offset after the last record already in a cut batch. */
  private readonly cutUpTo = new Map<number, number>();
  private anchoredUpTo = new Map<number, number>();
  /** The batch a previous run wrote ahead and did not finish, until it has been cut again. */
  private leftOpen: StoredBatch | undefined;
  /** The batch being anchored, as written ahead. */
  private current: StoredBatch | undefined;
  /** Batches whose AnchorCommitted is written: a retried finish only commits their offsets. */
  private readonly committed = new Set<string>();
  private wake: () => void = () => undefined;
  private readonly joinedGroup: Promise<void>;
  /** The last batches anchored by this process (at most ANCHORED_KEPT), for tests and the bench. */
  readonly anchored: { batchId: string; leaves: number; gasUsed: bigint; lagMs: number }[] = [];

  constructor(
    private readonly kafka: KafkaClient,
    private readonly codec: EventCodec,
    private readonly pool: Pool,
    private readonly options: AnchorServiceOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.store = new BatchStore(pool, options.groupId, options.mailboxTopic);
    this.maxHeld = options.config.maxMessages * 4;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      retry: { retries: 10, restartOnFailure: async () => true },
    });
    this.joinedGroup = new Promise((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  joined(): Promise<void> {
    return this.joinedGroup;
  }

  async run(signal: AbortSignal): Promise<void> {
    const lock = await this.pool.connect();
    try {
      for (let attempt = 0; !signal.aborted; attempt++) {
        const { rows } = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [
          `relay.anchor:${this.options.groupId}`,
        ]);
        if (rows[0]?.ok) break;
        if (attempt === 0) this.log.info('another anchor process holds this group; standing by until it stops');
        await sleep(2000, signal);
      }
      if (signal.aborted) return;
      const access = chainAt(this.options.config.rpcUrl, this.options.config.chainId);
      const signer = loadSigner(this.options.config);
      const contract = await this.withBackoff('finding the anchor contract', signal, () =>
        resolveContract(this.pool, access, signer, this.options.config, this.log),
      );
      if (!contract) return;
      this.log.info({ chain_id: contract.chainId, contract: contract.address, signer: signer.address }, 'anchoring');
      await this.consume(signal, access, signer, contract);
    } finally {
      await lock.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      lock.release();
    }
  }

  private async consume(
    signal: AbortSignal,
    access: ChainAccess,
    signer: PrivateKeyAccount,
    contract: AnchorContract,
  ): Promise<void> {
    const { config } = this.options;
    const submitter = new AnchorSubmitter(
      access,
      signer,
      contract,
      {
        confirmations: config.confirmations,
        maxFeePerGas: BigInt(config.maxFeeGwei) * 1_000_000_000n,
        replaceAfterMs: config.replaceAfterSeconds * 1000,
      },
      this.log,
    );
    this.leftOpen = await this.store.open();
    this.anchoredUpTo = await this.store.anchoredUpTo();
    if (this.leftOpen)
      this.log.info(
        { batch_id: this.leftOpen.batchId, root: this.leftOpen.root },
        'finishing the batch a previous run left open',
      );
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.options.mailboxTopic], fromBeginning: true });
    const crashed = new Promise<never>((_, reject) => {
      this.consumer.on(this.consumer.events.CRASH, (event) => {
        if (!event.payload.restart) reject(event.payload.error);
      });
    });
    crashed.catch(() => undefined);
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs's batch payload functions are arrow closures
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale()) return;
        const now = Date.now();
        for (const message of batch.messages) {
          const offset = Number(message.offset);
          const partition = batch.partition;
          const list = this.held.get(partition) ?? [];
          // Below the end of an anchored or cut batch, or held already: after a rejoin kafkajs
          // may deliver a partition again from its committed offset.
          const seen = Math.max(
            this.anchoredUpTo.get(partition) ?? 0,
            this.cutUpTo.get(partition) ?? 0,
            (list[list.length - 1]?.offset ?? -1) + 1,
          );
          if (offset < seen) continue;
          let sent: MessageSent | undefined;
          try {
            if (message.value) {
              const event = await this.codec.decode(message.value);
              if (event.type === 'MessageSent') sent = event.data;
            }
          } catch (error) {
            // A registry that does not answer is passing: fail the batch and read it again.
            if (!(error instanceof UndecodableEventError)) throw error;
            this.log.warn({ partition, offset, err: error }, 'mailbox record not decodable; it is not a leaf');
          }
          list.push({ partition, offset, message: sent, receivedAt: now });
          this.held.set(partition, list);
          this.heldCount++;
          resolveOffset(message.offset);
        }
        this.wake();
        // Back-pressure: while the chain is slow or down, hold at most a few batches' worth.
        while (this.heldCount >= this.maxHeld && !this.leftOpen && isRunning() && !isStale() && !signal.aborted) {
          await heartbeat();
          await sleep(1000, signal);
        }
        await heartbeat();
      },
    });
    await Promise.race([this.cutAndAnchor(signal, submitter, contract), crashed]);
    await this.consumer.disconnect().catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
  }

  /** The loop that cuts batches as they fill or age, and anchors each, one after the other. */
  private async cutAndAnchor(signal: AbortSignal, submitter: AnchorSubmitter, contract: AnchorContract): Promise<void> {
    while (!signal.aborted) {
      const batch = this.leftOpen ? this.cutRecovered(this.leftOpen) : this.cutNext(Date.now());
      if (!batch) {
        // New records wake the loop at once; the timer catches a batch coming of age.
        // (No signal for the timer: wakes come often, and each would leave an abort listener behind
        // for up to 200 ms; stopping waits at most that long.)
        await Promise.race([sleep(200), new Promise<void>((resolve) => (this.wake = resolve))]);
        continue;
      }
      if (this.leftOpen) {
        this.current = this.leftOpen;
        this.leftOpen = undefined;
      }
      const done = await this.withBackoff('anchoring a batch', signal, () =>
        this.finish(batch, submitter, contract, signal),
      );
      if (done === undefined) return;
      this.current = undefined;
    }
  }

  /** A batch of the records held, if it is full or its oldest record has waited the interval. */
  private cutNext(now: number): Batch | undefined {
    const { intervalSeconds, maxMessages } = this.options.config;
    if (this.heldCount === 0) return undefined;
    let leaves = 0;
    let oldest = Infinity;
    for (const list of this.held.values()) {
      for (const record of list) if (record.message) leaves++;
      if (list[0]) oldest = Math.min(oldest, list[0].receivedAt);
    }
    if (leaves < maxMessages && now - oldest < intervalSeconds * 1000) return undefined;
    // Take partitions in order, each from its first held record, until the batch is full.
    const ranges: AnchoredRange[] = [];
    const messages: MessageSent[] = [];
    for (const partition of [...this.held.keys()].sort((a, b) => a - b)) {
      const list = this.held.get(partition) ?? [];
      let taken = 0;
      for (const record of list) {
        if (record.message) {
          if (messages.length >= maxMessages) break;
          messages.push(record.message);
        }
        taken++;
      }
      if (taken === 0) continue;
      const first = list[0] as HeldRecord;
      const last = list[taken - 1] as HeldRecord;
      ranges.push({ partition, first_offset: first.offset, next_offset: last.offset + 1 });
      this.take(partition, taken, last.offset + 1);
    }
    return this.makeBatch(randomUUID(), ranges, messages);
  }

  /** The open batch of a previous run, once every record of its ranges has been read again. */
  private cutRecovered(open: StoredBatch): Batch | undefined {
    for (const range of open.ranges) {
      const list = this.held.get(range.partition) ?? [];
      // Records before the range were in earlier batches without leaves.
      while (list[0] && list[0].offset < range.first_offset) {
        list.shift();
        this.heldCount--;
      }
      if (!list.some((r) => r.offset >= range.next_offset - 1)) return undefined;
    }
    const messages: MessageSent[] = [];
    for (const range of [...open.ranges].sort((a, b) => a.partition - b.partition)) {
      const list = this.held.get(range.partition) ?? [];
      const taken = list.filter((r) => r.offset < range.next_offset);
      for (const record of taken) if (record.message) messages.push(record.message);
      this.take(range.partition, taken.length, range.next_offset);
    }
    return this.makeBatch(open.batchId, [...open.ranges], messages);
  }

  private take(partition: number, count: number, nextOffset: number): void {
    const list = this.held.get(partition) ?? [];
    list.splice(0, count);
    this.heldCount -= count;
    this.cutUpTo.set(partition, nextOffset);
  }

  private makeBatch(batchId: string, ranges: AnchoredRange[], messages: MessageSent[]): Batch {
    const tree =
      messages.length > 0
        ? new MerkleTree(messages.map((m) => leafHash({ ...m, accepted_at: m.occurred_at })))
        : undefined;
    return { batchId, ranges, messages, tree };
  }

  /** Steps 1-3 of the class comment for one batch; safe to call again after a failure. */
  private async finish(
    batch: Batch,
    submitter: AnchorSubmitter,
    contract: AnchorContract,
    signal: AbortSignal,
  ): Promise<true> {
    if (batch.tree && !this.committed.has(batch.batchId)) {
      const root = hex(batch.tree.root);
      if (this.current && this.current.root !== root) {
        // The log no longer gives the leaves written ahead: never anchor something else under this id.
        throw new FatalAnchorError(
          `batch ${batch.batchId} read again gives root ${root}, not the ${this.current.root} written ahead`,
        );
      }
      if (!this.current) {
        await this.store.create({
          batchId: batch.batchId,
          ranges: batch.ranges,
          root,
          treeSize: batch.tree.size,
          chainId: contract.chainId,
          contract: contract.address,
        });
        this.current = {
          batchId: batch.batchId,
          ranges: batch.ranges,
          root,
          treeSize: batch.tree.size,
          nonce: undefined,
          txHashes: [],
        };
      }
      const stored = this.current;
      const sent: SentTransactions = { nonce: stored.nonce, hashes: stored.txHashes };
      const confirmed = await submitter.anchor(
        root,
        uuidBytes16(batch.batchId),
        batch.tree.size,
        sent,
        async (s) => {
          this.current = { ...stored, nonce: s.nonce, txHashes: s.hashes };
          await this.store.recordSent(batch.batchId, s.nonce, s.hashes);
        },
        signal,
      );
      const event: AnchorCommitted = {
        event_id: batch.batchId,
        occurred_at: Date.now(),
        root,
        tree_size: batch.tree.size,
        chain_id: contract.chainId,
        contract: contract.address,
        tx_hash: confirmed.txHash,
        block_number: Number(confirmed.blockNumber),
        block_hash: confirmed.blockHash,
        block_time: confirmed.blockTime,
        mailbox_topic: this.options.mailboxTopic,
        ranges: batch.ranges,
        message_ids: batch.messages.map((m) => m.message_id),
        leaf_hashes: Buffer.concat(batch.tree.leaves),
      };
      await this.producer.send({
        topic: this.options.anchorsTopic,
        acks: -1,
        messages: [{ key: batch.batchId, value: this.codec.encode({ type: 'AnchorCommitted', data: event }) }],
      });
      await this.store.markCommitted(batch.batchId);
      this.committed.add(batch.batchId);
      const oldest = Math.min(...batch.messages.map((m) => m.occurred_at));
      const lagMs = event.occurred_at - oldest;
      this.anchored.push({ batchId: batch.batchId, leaves: batch.tree.size, gasUsed: confirmed.gasUsed, lagMs });
      if (this.anchored.length > ANCHORED_KEPT) this.anchored.shift();
      this.metrics?.anchoredMessages.inc(batch.tree.size);
      this.metrics?.anchorDelay.observe(lagMs / 1000);
      this.metrics?.lastAnchor.setToCurrentTime();
      this.log.info(
        {
          batch_id: batch.batchId,
          messages: batch.tree.size,
          root,
          tx_hash: confirmed.txHash,
          block: event.block_number,
          gas_used: confirmed.gasUsed.toString(),
          lag_ms: lagMs,
        },
        'anchored a batch',
      );
    }
    for (const range of batch.ranges) {
      this.anchoredUpTo.set(range.partition, Math.max(this.anchoredUpTo.get(range.partition) ?? 0, range.next_offset));
    }
    await this.consumer.commitOffsets(
      batch.ranges.map((r) => ({
        topic: this.options.mailboxTopic,
        partition: r.partition,
        offset: String(r.next_offset),
      })),
    );
    return true;
  }

  /**
   * Runs `step` until it succeeds or the service stops, waiting 1, 2, 4 ... up to 30 s between
   * failures: a chain (or Postgres, or Kafka) that is down is waited for, never given up on.
   * Undefined if the service stopped first.
   */
  private async withBackoff<T>(what: string, signal: AbortSignal, step: () => Promise<T>): Promise<T | undefined> {
    if (signal.aborted) return undefined;
    try {
      return await withRetry(step, {
        attempts: Number.POSITIVE_INFINITY,
        backoff: exponentialBackoff({ initialMs: 1000, maxMs: 30_000 }),
        signal,
        isRetriable: (error) => !(error instanceof FatalAnchorError),
        onRetry: (error, _failures, waitMs) =>
          this.log.warn({ err: error, retry_in_ms: waitMs }, `${what} failed; trying again`),
      });
    } catch (error) {
      if (signal.aborted) return undefined;
      throw error;
    }
  }
}
