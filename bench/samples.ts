/** Percentiles over every recorded value (no histogram buckets: exact, from a sorted copy). */
export interface Distribution {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export const EMPTY_DISTRIBUTION: Distribution = { count: 0, mean: NaN, p50: NaN, p99: NaN, p999: NaN, max: NaN };

/** A growable list of numbers (milliseconds, usually) and its percentiles. */
export class Samples {
  private values = new Float64Array(1024);
  private length = 0;

  add(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  get count(): number {
    return this.length;
  }

  summary(): Distribution {
    if (this.length === 0) return EMPTY_DISTRIBUTION;
    const sorted = this.values.slice(0, this.length).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: sorted.length,
      mean: sum / sorted.length,
      p50: at(0.5),
      p99: at(0.99),
      p999: at(0.999),
      max: sorted[sorted.length - 1] as number,
    };
  }
}

/** Counts per whole second since `origin` (ms); the spread shows whether a rate was steady. */
export class PerSecond {
  private readonly buckets: number[] = [];

  constructor(private readonly origin: number) {}

  add(at: number, count = 1): void {
    const second = Math.floor((at - this.origin) / 1000);
    if (second < 0) return;
    while (this.buckets.length <= second) this.buckets.push(0);
    this.buckets[second] = (this.buckets[second] ?? 0) + count;
  }

  /** Min, median and max over the first `seconds` whole seconds. */
  spread(seconds: number): { min: number; median: number; max: number } | undefined {
    const full = Array.from({ length: Math.floor(seconds) }, (_, i) => this.buckets[i] ?? 0);
    if (full.length === 0) return undefined;
    const sorted = [...full].sort((a, b) => a - b);
    return {
      min: sorted[0] as number,
      median: sorted[Math.floor(sorted.length / 2)] as number,
      max: sorted[sorted.length - 1] as number,
    };
  }
}
