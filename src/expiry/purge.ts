import { sleep } from '../lifecycle/service.js';
import type { Pool } from '../postgres/pool.js';

/**
 * Deleting settled messages (delivered or expired) from the read model once they are older than
 * the configured retention. The projector writes the same table all the time, so the live purge
 * deletes a few hundred rows per statement and pauses between statements: each DELETE holds its
 * row locks for milliseconds, and the projector only ever updates rows that are not settled, so
 * it never waits on a purge for more than one small batch.
 */

/** Rows settled more than `$1` seconds ago; matches the messages_settled index of migration 003. */
const SETTLED_BEFORE = `(delivered OR expired) AND COALESCE(delivered_at, expired_at) < now() - make_interval(secs => $1)`;

export interface PurgeOptions {
  /** Rows deleted by one statement. */
  readonly batch: number;
  /** Pause between two statements. */
  readonly pauseMs: number;
  /** Statements in one call at most, so one pass over a large backlog does not hold up expiry for long. */
  readonly maxBatches: number;
  readonly signal?: AbortSignal;
}

/** Deletes messages settled more than `purgeAfterSeconds` ago, in small batches; returns how many it deleted. */
export async function purgeSettled(pool: Pool, purgeAfterSeconds: number, options: PurgeOptions): Promise<number> {
  let deleted = 0;
  for (let round = 0; round < options.maxBatches && !options.signal?.aborted; round++) {
    if (round > 0) await sleep(options.pauseMs);
    const { rowCount } = await pool.query(
      `DELETE FROM messages WHERE ctid IN (SELECT ctid FROM messages WHERE ${SETTLED_BEFORE} LIMIT $2)`,
      [purgeAfterSeconds, options.batch],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < options.batch) break;
  }
  return deleted;
}

/**
 * The same purge in one statement, for a rebuild's own schema, which nothing else reads or writes
 * until it is switched in: it leaves out what the live purge has deleted.
 */
export async function purgeSettledAtOnce(pool: Pool, purgeAfterSeconds: number): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM messages WHERE ${SETTLED_BEFORE}`, [purgeAfterSeconds]);
  return rowCount ?? 0;
}
