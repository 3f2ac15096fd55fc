/** The state one progress line shows. */
export interface ProgressState {
  readonly label: string;
  /** Records read so far. */
  readonly done: number;
  /** Records to read in all, or null when there is no end (follow mode). */
  readonly total: number | null;
  /** Records per second, recently. */
  readonly rate: number;
  /** Extra text at the end of the line, such as how many matched. */
  readonly note?: string;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

/** h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** One line of progress, at most `width` characters: a bar when the total is known, the rate, and an ETA. */
export function renderProgress(state: ProgressState, width = 80): string {
  const rate = `${count(state.rate)} ev/s`;
  const note = state.note ? `  ${state.note}` : '';
  if (state.total === null) return `${state.label}  ${count(state.done)} events  ${rate}${note}`.slice(0, width);
  const total = Math.max(state.total, state.done);
  const fraction = total === 0 ? 1 : state.done / total;
  const remaining = total - state.done;
  const eta = remaining === 0 ? 0 : state.rate > 0 ? remaining / state.rate : Number.POSITIVE_INFINITY;
  const tail = ` ${String(Math.floor(fraction * 100)).padStart(3)}%  ${count(state.done)}/${count(total)}  ${rate}  ETA ${formatDuration(eta)}${note}`;
  const barWidth = Math.max(10, Math.min(40, width - state.label.length - tail.length - 4));
  const filled = Math.round(fraction * barWidth);
  return `${state.label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${tail}`.slice(0, width);
}

/** Where a progress bar draws: stderr when it is a terminal. */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly columns?: number;
}

/**
 * A progress line redrawn in place (carriage return) at most every `intervalMs`; the rate is
 * measured over the last few seconds so it follows changes in speed.
 */
export class ProgressBar {
  private done = 0;
  private note: string | undefined;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private readonly samples: { at: number; done: number }[] = [];
  private readonly startedAt: number;
  private finished = false;

  constructor(
    private readonly out: ProgressOutput,
    private readonly label: string,
    private total: number | null,
    private readonly intervalMs = 200,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
    this.samples.push({ at: this.startedAt, done: 0 });
  }

  setTotal(total: number | null): void {
    this.total = total;
  }

  update(done: number, note?: string): void {
    this.done = done;
    this.note = note;
    const at = this.now();
    if (at - this.lastDraw >= this.intervalMs) this.draw(at);
  }

  /** Draws the final state and ends the line. */
  finish(note?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (note !== undefined) this.note = note;
    this.draw(this.now(), true);
    this.out.write('\n');
  }

  /** Records per second over the last five seconds or so, or since the start when `whole`. */
  rate(at: number = this.now(), whole = false): number {
    const first = whole ? { at: this.startedAt, done: 0 } : (this.samples[0] ?? { at: this.startedAt, done: 0 });
    if (at <= first.at) return 0;
    return ((this.done - first.done) * 1000) / (at - first.at);
  }

  private draw(at: number, final = false): void {
    this.lastDraw = at;
    this.samples.push({ at, done: this.done });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) > 5000) this.samples.shift();
    const width = Math.max(40, (this.out.columns || 80) - 1); // a pseudo-terminal without a size says 0
    const line = renderProgress(
      { label: this.label, done: this.done, total: this.total, rate: this.rate(at, final), note: this.note },
      width,
    );
    this.out.write(`\r${line}\x1b[K`);
  }
}
