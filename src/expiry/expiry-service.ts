import { randomUUID } from 'node:crypto';
import type { RelayEvent } from '../events/types.js';
import type { RecordPosition } from '../kafka/batching-producer.js';
import type { EventPublisher } from '../kafka/event-publisher.js';
import type { LogEnds } from '../kafka/log-ends.js';
import { sleep, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Pool, PoolClient } from '../postgres/pool.js';
import type { CheckpointWatch } from '../projections/checkpoint-watch.js';
import { purgeSettled } from './purge.js';

/*
 * The expiry role: writes one MessageExpired for each undelivered message past its expires_at,
 * and purges settled rows from the read model.
 *
 * Exactly one MessageExpired per message, without a second store of what was emitted:
 * - One expirer at a time per read model: the one holding a Postgres session advisory lock.
 *   Others wait and take over when its connection ends (a crash releases the lock).
 * - The read model decides what is due, and it learns of an emitted MessageExpired only when the
 *   projector applies it. So the expirer never looks again before the projector has caught up:
 *   on taking the lock it waits until the projector's checkpoints reach the mailbox topic's end
 *   offsets of that moment (so whatever a predecessor emitted before dying is applied), and after
 *   each batch it waits until the checkpoints pass the positions of the events it wrote.
 * If the projector stops, expiry waits with it rather than emit twice. A MessageExpired that
 * still comes twice (a predecessor that lost its connection but not its process, mid-produce)
 * changes nothing: the projection applies the first settling event of a message and ignores the
 * rest (read-model.ts).
 */

export interface ExpiryOptions {
  /** Pause between passes when nothing is due. */
  readonly intervalMs: number;
  /** Most MessageExpired written per pass. */
  readonly expireBatch: number;
  /** Rows settled longer ago than this are purged (RELAY_PURGE_AFTER_SECONDS). */
  readonly purgeAfterSeconds: number;
  readonly purgeBatch: number;
  readonly purgePauseMs: number;
  readonly purgeMaxBatches: number;
}

export const DEFAULT_EXPIRY_OPTIONS: Omit<ExpiryOptions, 'purgeAfterSeconds'> = {
  intervalMs: 1000,
  expireBatch: 1000,
  purgeBatch: 500,
  purgePauseMs: 50,
  purgeMaxBatches: 100,
};

export interface ExpiryDeps {
  readonly pool: Pool;
  readonly events: EventPublisher;
  readonly logEnds: LogEnds;
  /** The projector's applied positions, which the expirer waits on. */
  readonly watch: CheckpointWatch;
  readonly mailboxTopic: string;
  /** Names the advisory lock: one expirer per read model schema. */
  readonly schema: string;
  readonly log: Logger;
  /** Resolves once the producer can send. */
  readonly ready?: () => Promise<void>;
  readonly metrics?: Metrics;
}

const WAIT_REPORT_MS = 30_000;

export class ExpiryService implements Service {
  readonly name = 'expiry';

  constructor(
    private readonly deps: ExpiryDeps,
    private readonly options: ExpiryOptions,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    await this.deps.ready?.();
    while (!signal.aborted) {
      let leader: PoolClient | undefined;
      let failure: unknown;
      try {
        leader = await this.deps.pool.connect();
        if (await this.lock(leader)) {
          this.deps.log.info('this process is the expirer');
          await this.lead(leader, signal);
        }
      } catch (error) {
        failure = error;
        if (!signal.aborted) this.deps.log.warn({ err: error }, 'expiry pass failed; trying again');
      } finally {
        // A connection that failed is dropped, which also releases its lock; a healthy one unlocks and goes back.
        if (leader && failure === undefined)
          await leader.query('SELECT pg_advisory_unlock_all()').catch((error: unknown) => (failure = error));
        leader?.release(failure instanceof Error ? failure : undefined);
      }
      await sleep(this.options.intervalMs, signal);
    }
  }

  private async lock(client: PoolClient): Promise<boolean> {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [
      `relay.expiry:${this.deps.schema}`,
    ]);
    return rows[0]?.ok === true;
  }

  private async lead(leader: PoolClient, signal: AbortSignal): Promise<void> {
    // Whatever an earlier expirer wrote is in the log by now; wait until the read model shows it.
    await this.waitForProjection(await this.deps.logEnds.ends(this.deps.mailboxTopic), signal);
    while (!signal.aborted) {
      await leader.query('SELECT 1'); // still holding the lock: the session is alive
      const expired = await this.expireDue(signal);
      const purged = await purgeSettled(this.deps.pool, this.options.purgeAfterSeconds, {
        batch: this.options.purgeBatch,
        pauseMs: this.options.purgePauseMs,
        maxBatches: this.options.purgeMaxBatches,
        signal,
      });
      this.deps.metrics?.messagesExpired.inc(expired);
      this.deps.metrics?.rowsPurged.inc(purged);
      if (expired > 0 || purged > 0) this.deps.log.debug({ expired, purged }, 'expiry pass');
      if (expired < this.options.expireBatch) await sleep(this.options.intervalMs, signal);
    }
  }

  /** Writes MessageExpired for the messages due now and waits until the projector has applied them. */
  private async expireDue(signal: AbortSignal): Promise<number> {
    const { rows } = await this.deps.pool.query<{ id: string; receiver_address: string }>(
      `SELECT id, receiver_address FROM messages
        WHERE NOT delivered AND NOT expired AND expires_at <= now()
        ORDER BY expires_at LIMIT $1`,
      [this.options.expireBatch],
    );
    if (rows.length === 0) return 0;
    const now = Date.now();
    const events: RelayEvent[] = rows.map((row) => ({
      type: 'MessageExpired',
      data: { event_id: randomUUID(), occurred_at: now, message_id: row.id, to_address: row.receiver_address },
    }));
    const positions = await Promise.all(this.deps.events.publish(events));
    await this.waitForProjection(nextOffsets(positions), signal);
    return rows.length;
  }

  /** Waits until the projector has applied each partition up to its target (the next offset to apply). */
  private async waitForProjection(targets: ReadonlyMap<number, bigint>, signal: AbortSignal): Promise<void> {
    const positions = [...targets]
      .filter(([, next]) => next > 0n)
      .map(([partition, next]) => ({ topic: this.deps.mailboxTopic, partition, offset: next - 1n }));
    const started = Date.now();
    while (!signal.aborted && !(await this.deps.watch.waitFor(positions, WAIT_REPORT_MS))) {
      this.deps.log.warn(
        { waited_ms: Date.now() - started },
        'expiry waits for the projector to apply the mailbox topic',
      );
    }
  }
}

/** Per partition, the offset after the last of the positions. */
function nextOffsets(positions: readonly RecordPosition[]): Map<number, bigint> {
  const result = new Map<number, bigint>();
  for (const { partition, offset } of positions) {
    const next = BigInt(offset) + 1n;
    if (next > (result.get(partition) ?? 0n)) result.set(partition, next);
  }
  return result;
}
