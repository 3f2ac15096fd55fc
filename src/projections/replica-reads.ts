import pg from 'pg';
import type { RelayConfig } from '../config/config.js';
import { sleep, type Service } from '../lifecycle/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createPool, type Pool } from '../postgres/pool.js';
import type { LogPosition } from './checkpoint-watch.js';
import { PROJECTION_NAME } from './postgres-projector.js';

/** Where a read runs its one statement; a Pool is one. */
export interface ReadSource {
  query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Where a read runs: a read that says what it must see (`covering`) may run on the replica, when
 * one is configured; a read without it (a stream's backlog, which must see the log's end, or a
 * registration's own look) runs on the primary.
 */
export function readSource(
  primary: Pool,
  replica: ReplicaReads | undefined,
  covering: readonly LogPosition[] | undefined,
): ReadSource {
  return covering && replica ? replica.source(covering) : primary;
}

/** Why a read went where it went: the values of relay_db_reads_total's `reason`. */
type Reason = 'caught_up' | 'behind' | 'down' | 'error';

/** A replica that failed is left alone this long, so that reads do not each wait for it to fail. */
const DOWN_MS = 5000;
/** A replica that does not accept a connection within this is taken as down. */
const CONNECT_TIMEOUT_MS = 1000;
/**
 * A statement on the replica that has no answer within this is taken as a down replica: a
 * black-holed connection would otherwise hold the read until TCP keepalive gives up, hours later.
 */
const QUERY_TIMEOUT_MS = 5000;
/** How often the lag is measured; relay_db_replica_lag_seconds is exact to this. */
const MEASURE_MS = 1000;
/** Distinct states of the primary's checkpoints kept for the lag; a replica further behind shows at least the oldest's age. */
const MAX_SAMPLES = 600;

/** `topic/partition` → the next offset the projection will apply there. */
export type Applied = ReadonlyMap<string, bigint>;

/** The projection's checkpoints on one server (the primary, or the replica as far as it has replayed). */
async function appliedOn(db: Pool | pg.PoolClient, projection: string): Promise<Applied> {
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
    'SELECT topic, partition, next_offset FROM projection_checkpoints WHERE projection = $1',
    [projection],
  );
  return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, BigInt(r.next_offset)]));
}

/** How far behind (s) a replica may be for a read that names no position to cover. */
const MAX_UNCOVERED_LAG_SECONDS = 5;

const coversPositions = (applied: Applied, positions: readonly LogPosition[]): boolean =>
  positions.every((p) => (applied.get(`${p.topic}/${p.partition}`) ?? -1n) > p.offset);

const coversState = (applied: Applied, state: Applied): boolean =>
  [...state].every(([slot, next]) => (applied.get(slot) ?? -1n) >= next);

const sameState = (a: Applied, b: Applied): boolean => a.size === b.size && coversState(a, b) && coversState(b, a);

/**
 * relay_db_replica_lag_seconds: how long the replica has been missing something the primary's
 * read model held. The primary's checkpoints are observed every second (each distinct state kept
 * once, with when it was first seen), then the replica's are read; the lag is the age of the
 * first state after the newest one the replica covers, and 0 when it covers the latest. So it is
 * exact to the sampling (never more than the truth), 0 on an idle, caught-up replica (where
 * now() - pg_last_xact_replay_timestamp() would keep growing), and in the read model's own terms,
 * the ones that decide where a read goes (WAL byte lag counts any write, and is not in seconds).
 */
export class ReplicaLagClock {
  /** Distinct states of the primary's checkpoints, oldest first, each with when it was first seen. */
  private readonly states: { readonly at: number; readonly applied: Applied }[] = [];

  constructor(private readonly maxStates = MAX_SAMPLES) {}

  /** The primary's checkpoints as read at `at` (ms). */
  observePrimary(applied: Applied, at: number): void {
    const last = this.states[this.states.length - 1];
    if (!last || !sameState(last.applied, applied)) this.states.push({ at, applied });
    if (this.states.length > this.maxStates) this.states.shift();
  }

  /** The lag of a replica whose checkpoints are `replica`, read after the last observation, at `now` (ms). */
  lagSeconds(replica: Applied, now: number): number {
    let firstMissing: number | undefined;
    for (let i = this.states.length - 1; i >= 0; i--) {
      const state = this.states[i] as (typeof this.states)[number];
      if (coversState(replica, state.applied)) break;
      firstMissing = state.at;
    }
    return firstMissing === undefined ? 0 : Math.max(0, now - firstMissing) / 1000;
  }
}

/**
 * A connection that failed, or a server that said it is going away or not yet there (SQLSTATE
 * 08xxx, 57P01-57P03); any other error came from a server that answers, so the replica is up.
 */
const isDown = (error: unknown): boolean =>
  !(error instanceof pg.DatabaseError) || /^(08|57P0[123])/.test(error.code ?? '');

/**
 * Mailbox and peer reads on a streaming replica (RELAY_DATABASE_READ_URL), when the replica has
 * what the read must see; on the primary otherwise.
 *
 * Whether the replica has caught up with a read's consistency position is decided by the
 * projector's checkpoint rows as the replica has replayed them: the projector moves a checkpoint
 * in the transaction that writes its rows, so a replica whose checkpoint is past a position holds
 * every row up to it. That is exact, needs nothing from the primary, and asks the replica itself
 * (NOTIFY does not reach a standby, and LISTEN is refused there; comparing WAL positions would
 * need a primary round trip per read). The check and the read share one connection: replay only
 * moves forward, so the read sees at least what the check saw, even with several standbys
 * behind one address. A read with no position to cover (no token, no write from this node to
 * the address) takes the replica as it is.
 *
 * A replica that cannot be reached is left alone for a few seconds (DOWN_MS), then tried again.
 */
export class ReplicaReads implements Service {
  readonly name = 'replica-reads';
  private downUntil = 0;
  private down = false;
  private lastErrorLog = 0;
  private readonly lag = new ReplicaLagClock();
  /** The lag last measured (s), or undefined while it could not be measured. */
  private lastLagSeconds: number | undefined;

  constructor(
    private readonly deps: {
      readonly primary: Pool;
      readonly replica: Pool;
      readonly metrics: Metrics;
      readonly log: Logger;
      readonly projection?: string;
    },
  ) {
    // An idle connection the replica drops (a restart, a failover) must not crash the process.
    deps.replica.on('error', (error) => deps.log.debug({ err: error }, 'idle replica connection failed'));
  }

  /** Reads on the replica of RELAY_DATABASE_READ_URL, or undefined when none is configured. */
  static open(config: RelayConfig, deps: { primary: Pool; metrics: Metrics; log: Logger }): ReplicaReads | undefined {
    if (!config.postgres.readUrl) return undefined;
    const replica = createPool(config, {
      connectionString: config.postgres.readUrl,
      application_name: 'relay-read',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
    });
    return new ReplicaReads({ ...deps, replica });
  }

  private get projection(): string {
    return this.deps.projection ?? PROJECTION_NAME;
  }

  private get lagLabels() {
    return { projection: this.projection };
  }

  /** Where a read that must see `covering` runs: the replica if it has applied them, else the primary. */
  source(covering: readonly LogPosition[]): ReadSource {
    return { query: (text, values) => this.query(covering, text, values) };
  }

  /** Measures the replica's lag every second until `signal` aborts; then closes the replica's connections. */
  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        await this.measureLag().catch((error: unknown) => {
          // No sample rather than a number that would look like a healthy replica.
          this.lastLagSeconds = undefined;
          this.deps.metrics.replicaLag.remove(this.lagLabels);
          this.deps.log.debug({ err: error }, 'could not measure the replica lag');
        });
        await sleep(MEASURE_MS, signal);
      }
    } finally {
      await this.deps.replica.end().catch(() => undefined);
    }
  }

  private async query<R extends pg.QueryResultRow>(
    covering: readonly LogPosition[],
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (Date.now() < this.downUntil) return this.onPrimary('down', text, values);
    let reason: Reason = 'behind';
    try {
      const result = await this.onReplica<R>(covering, text, values);
      if (result) {
        this.deps.metrics.dbReads.inc({ target: 'replica', reason: 'caught_up' });
        return result;
      }
    } catch (error) {
      reason = isDown(error) ? 'down' : 'error';
      if (reason === 'down') this.failed(error);
      else this.erred(error);
    }
    return this.onPrimary(reason, text, values);
  }

  /** The read on the replica, or undefined if the replica has not applied `covering`. */
  private async onReplica<R extends pg.QueryResultRow>(
    covering: readonly LogPosition[],
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R> | undefined> {
    const client = await this.deps.replica.connect();
    // The pool stops listening for errors on a connection it lends: one the replica drops
    // between the two statements must not become an unhandled 'error' event.
    const ignore = () => undefined;
    client.on('error', ignore);
    let failure: unknown;
    try {
      // A read with nothing to cover still should not see a replica that stopped replaying: it
      // takes the replica only while its measured lag is within MAX_UNCOVERED_LAG_SECONDS.
      const caughtUp =
        covering.length === 0
          ? this.lastLagSeconds !== undefined && this.lastLagSeconds <= MAX_UNCOVERED_LAG_SECONDS
          : coversPositions(await appliedOn(client, this.projection), covering);
      this.recovered();
      return caughtUp ? await client.query<R>(text, values) : undefined;
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      client.off('error', ignore);
      // A connection that failed is not given back to the pool.
      client.release(failure !== undefined && isDown(failure) ? (failure as Error) : undefined);
    }
  }

  private onPrimary<R extends pg.QueryResultRow>(
    reason: Reason,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.deps.metrics.dbReads.inc({ target: 'primary', reason });
    return this.deps.primary.query<R>(text, values);
  }

  private failed(error: unknown): void {
    this.downUntil = Date.now() + DOWN_MS;
    if (!this.down)
      this.deps.log.warn(
        { err: error },
        `the read replica failed; reads go to the primary, and try it again in ${DOWN_MS / 1000} s`,
      );
    this.down = true;
  }

  /** An error the replica answered with: that read goes to the primary; said at most every DOWN_MS. */
  private erred(error: unknown): void {
    if (Date.now() - this.lastErrorLog < DOWN_MS) return;
    this.lastErrorLog = Date.now();
    this.deps.log.warn({ err: error }, 'a read failed on the replica; it and others that fail so go to the primary');
  }

  private recovered(): void {
    if (this.down) this.deps.log.info('the read replica answers again; reads that it has caught up with go to it');
    this.down = false;
  }

  /** One reading of relay_db_replica_lag_seconds (see ReplicaLagClock). */
  private async measureLag(): Promise<void> {
    this.lag.observePrimary(await appliedOn(this.deps.primary, this.projection), Date.now());
    const replica = await appliedOn(this.deps.replica, this.projection);
    this.lastLagSeconds = this.lag.lagSeconds(replica, Date.now());
    this.deps.metrics.replicaLag.set(this.lagLabels, this.lastLagSeconds);
  }
}
