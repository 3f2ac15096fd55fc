import type { Hex } from 'viem';
import type { AnchoredRange } from '../events/types.js';
import type { Pool } from '../postgres/pool.js';

/** An anchoring batch as written ahead in `anchor_batches` (migrations/005_anchoring.sql). */
export interface StoredBatch {
  readonly batchId: string;
  readonly ranges: readonly AnchoredRange[];
  readonly root: Hex;
  readonly treeSize: number;
  readonly nonce: number | undefined;
  readonly txHashes: Hex[];
}

/** The anchor role's own state in Postgres: its open batch, and how far its batches reach. */
export class BatchStore {
  constructor(
    private readonly pool: Pool,
    private readonly group: string,
    private readonly topic: string,
  ) {}

  /** The batch written ahead and not yet committed, if a previous run stopped during one. */
  async open(): Promise<StoredBatch | undefined> {
    const { rows } = await this.pool.query<{
      batch_id: string;
      ranges: AnchoredRange[];
      root: Hex;
      tree_size: number;
      nonce: string | null;
      tx_hashes: Hex[];
    }>(
      `SELECT batch_id, ranges, root, tree_size, nonce, tx_hashes FROM anchor_batches
        WHERE consumer_group = $1 AND mailbox_topic = $2 AND committed_at IS NULL ORDER BY created_at LIMIT 1`,
      [this.group, this.topic],
    );
    const row = rows[0];
    return row
      ? {
          batchId: row.batch_id,
          ranges: row.ranges,
          root: row.root,
          treeSize: row.tree_size,
          nonce: row.nonce === null ? undefined : Number(row.nonce),
          txHashes: row.tx_hashes,
        }
      : undefined;
  }

  /** Per partition, the offset after the last record of a committed batch: records below it are anchored. */
  async anchoredUpTo(): Promise<Map<number, number>> {
    const { rows } = await this.pool.query<{ partition: number; next_offset: string }>(
      `SELECT (r->>'partition')::int AS partition, max((r->>'next_offset')::bigint) AS next_offset
         FROM anchor_batches, jsonb_array_elements(ranges) AS r
        WHERE consumer_group = $1 AND mailbox_topic = $2 AND committed_at IS NOT NULL
        GROUP BY 1`,
      [this.group, this.topic],
    );
    return new Map(rows.map((r) => [r.partition, Number(r.next_offset)]));
  }

  async create(batch: {
    batchId: string;
    ranges: readonly AnchoredRange[];
    root: Hex;
    treeSize: number;
    chainId: number;
    contract: string;
  }): Promise<void> {
    await this.pool.query(
      `INSERT INTO anchor_batches (batch_id, consumer_group, mailbox_topic, ranges, root, tree_size, chain_id, contract)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        batch.batchId,
        this.group,
        this.topic,
        JSON.stringify(batch.ranges),
        batch.root,
        batch.treeSize,
        batch.chainId,
        batch.contract,
      ],
    );
  }

  async recordSent(batchId: string, nonce: number | undefined, hashes: readonly Hex[]): Promise<void> {
    await this.pool.query('UPDATE anchor_batches SET nonce = $2, tx_hashes = $3 WHERE batch_id = $1', [
      batchId,
      nonce ?? null,
      hashes,
    ]);
  }

  async markCommitted(batchId: string): Promise<void> {
    await this.pool.query('UPDATE anchor_batches SET committed_at = now() WHERE batch_id = $1', [batchId]);
  }
}
