import { cpuSeconds, machineCpu, peakRss, resetPeakRss, withChildren } from './proc-stats.js';

/** A named process (or group of processes, like a postmaster and its backends) whose CPU and memory the report shows. */
export interface Watched {
  readonly name: string;
  /** Ours: a relay role the bench started. Others are context (broker, Redis, Postgres, the load generator). */
  readonly ours: boolean;
  readonly pids: () => readonly number[];
}

export interface Usage {
  /** CPU seconds used between the two snapshots. */
  readonly cpuSeconds: number;
  /** Peak RSS (bytes) of one of our processes since the window began; undefined for context processes. */
  readonly peakRssBytes: number | undefined;
}

export interface Snapshot {
  readonly at: number;
  readonly cpu: ReadonlyMap<string, number>;
  readonly machine: { busy: number; total: number };
}

export interface WindowUsage {
  readonly seconds: number;
  readonly processes: Readonly<Record<string, Usage>>;
  /** Busy CPU seconds of the whole machine (all cores), and what is left once the watched processes are taken out. */
  readonly machineBusy: number;
  readonly otherBusy: number;
  readonly cores: number;
}

/** CPU and peak RSS of a set of processes over a window (a phase). */
export class ProcessWatch {
  constructor(
    private readonly watched: readonly Watched[],
    private readonly cores: number,
  ) {}

  /** Starts a window: the peak RSS of our processes is reset (where the kernel allows it); others are only read. */
  begin(): Snapshot {
    for (const w of this.watched) if (w.ours) for (const pid of w.pids()) resetPeakRss(pid);
    return this.snapshot();
  }

  snapshot(): Snapshot {
    const cpu = new Map<string, number>();
    for (const w of this.watched)
      cpu.set(
        w.name,
        w.pids().reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0),
      );
    return { at: Date.now(), cpu, machine: machineCpu() };
  }

  usage(from: Snapshot, to: Snapshot = this.snapshot()): WindowUsage {
    const processes: Record<string, Usage> = {};
    let watchedBusy = 0;
    for (const w of this.watched) {
      const cpu = Math.max(0, (to.cpu.get(w.name) ?? 0) - (from.cpu.get(w.name) ?? 0));
      watchedBusy += cpu;
      const peaks = w.ours
        ? w
            .pids()
            .map(peakRss)
            .filter((v): v is number => v !== undefined)
        : [];
      processes[w.name] = { cpuSeconds: cpu, peakRssBytes: peaks.length > 0 ? Math.max(...peaks) : undefined };
    }
    const machineBusy = to.machine.busy - from.machine.busy;
    return {
      seconds: (to.at - from.at) / 1000,
      processes,
      machineBusy,
      otherBusy: Math.max(0, machineBusy - watchedBusy),
      cores: this.cores,
    };
  }
}

/** A group that is one pid and its children, looked up again at each read (backends come and go). */
export const processTree =
  (root: number | undefined): (() => readonly number[]) =>
  () =>
    root === undefined ? [] : withChildren(root);
