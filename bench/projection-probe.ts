import type { Pool } from '../src/postgres/pool.js';
import { Samples, type Distribution } from './samples.js';

interface Tracked {
  readonly phase: string;
  /** performance.now() when the relay's answer (202, or the batch result) arrived. */
  readonly acceptedAt: number;
}

export interface ProjectionLag {
  /** Sampled messages, and how many reached the read model. */
  readonly sampled: number;
  readonly projected: number;
  /** Answer-to-row-visible times in ms (an upper bound: rows are looked for every POLL_MS). */
  readonly lag: Distribution;
  /** Median lag of the first and the last third of the phase: a growing lag means the projector fell behind. */
  readonly firstThirdP50: number;
  readonly lastThirdP50: number;
  /** Seconds after the load stopped until every sampled message and the row count were in; undefined if not within the wait. */
  readonly caughtUpAfterSeconds: number | undefined;
  /** Rows in `messages` against messages answered as accepted (cumulative over the run) when the wait ended. */
  readonly rows: number;
  readonly expectedRows: number;
}

const POLL_MS = 50;
const MAX_IDS_PER_QUERY = 5000;

/**
 * Measures how long accepted messages take to reach the Postgres read model: a sample of
 * message ids is noted with the time the relay accepted them, and the `messages` table is polled
 * for those ids until each appears.
 */
export class ProjectionProbe {
  private readonly pending = new Map<string, Tracked>();
  private readonly found = new Map<string, { phase: string; acceptedAt: number; lag: number }[]>();
  private readonly sampledByPhase = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;

  constructor(private readonly pool: Pool) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.poll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, POLL_MS);
      });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  track(id: string, phase: string, acceptedAt: number): void {
    this.pending.set(id, { phase, acceptedAt });
    this.sampledByPhase.set(phase, (this.sampledByPhase.get(phase) ?? 0) + 1);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.pending.size === 0) return;
    this.polling = true;
    try {
      const ids = [...this.pending.keys()].slice(0, MAX_IDS_PER_QUERY);
      const askedAt = performance.now();
      const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM messages WHERE id = ANY($1::uuid[])', [
        ids,
      ]);
      for (const { id } of rows) {
        const tracked = this.pending.get(id);
        if (!tracked) continue;
        this.pending.delete(id);
        const list = this.found.get(tracked.phase) ?? [];
        list.push({
          phase: tracked.phase,
          acceptedAt: tracked.acceptedAt,
          lag: Math.max(0, askedAt - tracked.acceptedAt),
        });
        this.found.set(tracked.phase, list);
      }
    } catch {
      // the next poll tries again
    } finally {
      this.polling = false;
    }
  }

  private pendingOf(phase: string): number {
    let n = 0;
    for (const t of this.pending.values()) if (t.phase === phase) n++;
    return n;
  }

  private async rowCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM messages');
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Waits up to `timeoutMs` after the load of `phase` ended for its sampled ids and for the
   * row count to reach `expectedRows`; then summarizes the phase's lag.
   */
  async settle(
    phase: string,
    loadStart: number,
    loadEnd: number,
    expectedRows: number,
    timeoutMs: number,
  ): Promise<ProjectionLag> {
    const deadline = performance.now() + timeoutMs;
    let caughtUpAfterSeconds: number | undefined;
    let rows = 0;
    for (;;) {
      rows = await this.rowCount().catch(() => rows);
      if (this.pendingOf(phase) === 0 && rows >= expectedRows) {
        caughtUpAfterSeconds = Math.max(0, (performance.now() - loadEnd) / 1000);
        break;
      }
      if (performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const found = this.found.get(phase) ?? [];
    const all = new Samples();
    const first = new Samples();
    const last = new Samples();
    const third = (loadEnd - loadStart) / 3;
    for (const f of found) {
      all.add(f.lag);
      if (f.acceptedAt < loadStart + third) first.add(f.lag);
      else if (f.acceptedAt >= loadEnd - third) last.add(f.lag);
    }
    return {
      sampled: this.sampledByPhase.get(phase) ?? 0,
      projected: found.length,
      lag: all.summary(),
      firstThirdP50: first.summary().p50,
      lastThirdP50: last.summary().p50,
      caughtUpAfterSeconds,
      rows,
      expectedRows,
    };
  }
}
