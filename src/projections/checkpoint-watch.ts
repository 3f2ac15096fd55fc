import type pg from 'pg';
import { sleep, untilAborted, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Pool } from '../postgres/pool.js';
import { APPLIED_CHANNEL, PROJECTION_NAME } from './postgres-projector.js';

/** The place of one record in the log. */
export interface LogPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

interface Waiter {
  readonly positions: readonly LogPosition[];
  readonly resolve: (applied: boolean) => void;
}

/** While anyone waits, checkpoints are read again this often, in case a notification was lost. */
const POLL_MS = 100;

/**
 * How far the Postgres read model has applied each partition of the log, so that a read can wait
 * until it covers a given write. The projector sends `NOTIFY relay_applied` in the transaction
 * that moves a checkpoint, so a notification arrives only once its rows are visible; while
 * anyone waits, the checkpoints are also read every 100 ms, which covers a LISTEN connection that
 * dropped. Several schemas (tenants, test files) may share a database: notifications name theirs.
 */
export class CheckpointWatch implements Service {
  readonly name = 'checkpoint-watch';
  /** `topic/partition` → the next offset the projection will apply there. */
  private readonly next = new Map<string, bigint>();
  private readonly waiters = new Set<Waiter>();
  private polling: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      readonly pool: Pool;
      readonly connect: () => pg.Client;
      readonly schema: string;
      readonly log: Logger;
      readonly projection?: string;
    },
  ) {}

  private get projection() {
    return this.deps.projection ?? PROJECTION_NAME;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const client = this.deps.connect();
      try {
        const lost = new Promise<void>((resolve) => {
          client.once('error', (error: Error) => {
            this.deps.log.warn({ err: error }, 'the checkpoint LISTEN connection failed; reconnecting');
            resolve();
          });
          client.once('end', () => resolve());
        });
        client.on('notification', (n: pg.Notification) => {
          if (n.channel === APPLIED_CHANNEL && n.payload) this.notified(n.payload);
        });
        await client.connect();
        await client.query(`LISTEN ${APPLIED_CHANNEL}`);
        await this.refresh();
        await Promise.race([untilAborted(signal), lost]);
      } catch (error) {
        this.deps.log.warn({ err: error }, 'could not listen for applied checkpoints; reads poll them meanwhile');
      } finally {
        await client.end().catch(() => undefined);
      }
      await sleep(1000, signal);
    }
    for (const waiter of this.waiters) waiter.resolve(this.covers(waiter.positions));
    this.waiters.clear();
    this.stopPolling();
  }

  /** Whether the read model has applied every record at or before these positions. */
  covers(positions: readonly LogPosition[]): boolean {
    return positions.every((p) => (this.next.get(`${p.topic}/${p.partition}`) ?? -1n) > p.offset);
  }

  /**
   * Resolves true once the read model has applied every record at or before `positions`, or false
   * after `timeoutMs` if it has not.
   */
  async waitFor(positions: readonly LogPosition[], timeoutMs: number): Promise<boolean> {
    if (positions.length === 0 || this.covers(positions)) return true;
    // The map may be behind the database (no notification yet): one read before waiting.
    await this.refresh();
    if (this.covers(positions) || timeoutMs <= 0) return this.covers(positions);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), timeoutMs);
      const waiter: Waiter = { positions, resolve: (applied) => settle(applied) };
      const settle = (applied: boolean) => {
        clearTimeout(timer);
        if (!this.waiters.delete(waiter)) return;
        if (this.waiters.size === 0) this.stopPolling();
        resolve(applied);
      };
      this.waiters.add(waiter);
      this.polling ??= setInterval(() => void this.refresh().catch(() => undefined), POLL_MS);
    });
  }

  private stopPolling(): void {
    clearInterval(this.polling);
    this.polling = undefined;
  }

  /** Reads every checkpoint of the projection. */
  private async refresh(): Promise<void> {
    const { rows } = await this.deps.pool.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM projection_checkpoints WHERE projection = $1',
      [this.projection],
    );
    for (const row of rows) this.advance(row.topic, row.partition, BigInt(row.next_offset));
    this.wakeWaiters();
  }

  private notified(payload: string): void {
    const [schema, projection, topic, partition, next] = payload.split(' ');
    if (
      schema !== this.deps.schema ||
      projection !== this.projection ||
      !topic ||
      partition === undefined ||
      next === undefined
    )
      return;
    this.advance(topic, Number(partition), BigInt(next));
    this.wakeWaiters();
  }

  private advance(topic: string, partition: number, next: bigint): void {
    const slot = `${topic}/${partition}`;
    if ((this.next.get(slot) ?? -1n) < next) this.next.set(slot, next);
  }

  private wakeWaiters(): void {
    for (const waiter of this.waiters) if (this.covers(waiter.positions)) waiter.resolve(true);
  }
}
