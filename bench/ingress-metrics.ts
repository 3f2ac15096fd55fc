/**
 * The ingress's own view of a phase, from its Prometheus endpoint: how many records each produce
 * request carried, how long requests took inside the server, and how late its event loop ran.
 * Read once before and once after the load; counters and histograms are compared, and the
 * event-loop gauges (which prom-client resets at each scrape) describe the time in between.
 */
export type Scrape = ReadonlyMap<string, number>;

export interface IngressView {
  readonly produceRequests: number;
  readonly recordsPerProduce: number;
  /** Mean time inside the server per request of the phase's route, ms, and an upper bound of its p99 from the histogram buckets. */
  readonly serverMeanMs: number;
  readonly serverP99AtMostMs: number | undefined;
  readonly eventLoopDelayP99Ms: number;
  readonly eventLoopDelayMaxMs: number;
  readonly loadShed: number;
}

export async function scrape(baseUrl: string): Promise<Scrape> {
  const text = await fetch(`${baseUrl}/metrics`).then((r) => r.text());
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const delta = (before: Scrape, after: Scrape, key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);

/** Sums a metric over every series whose labels contain `match`. */
const sumOver = (scrape: Scrape, name: string, match: string) => {
  let sum = 0;
  for (const [key, value] of scrape) if (key.startsWith(`${name}{`) && key.includes(match)) sum += value;
  return sum;
};

export function ingressView(before: Scrape, after: Scrape, route: string): IngressView {
  const produceRequests = delta(before, after, 'relay_produce_batch_records_count');
  const records = delta(before, after, 'relay_produce_batch_records_sum');
  const name = 'relay_http_request_duration_seconds';
  const match = `route="${route}",method="POST",status="`;
  const count = sumOver(after, `${name}_count`, match) - sumOver(before, `${name}_count`, match);
  const sum = sumOver(after, `${name}_sum`, match) - sumOver(before, `${name}_sum`, match);
  // p99 bound: the smallest bucket holding 99 % of the phase's requests (all statuses together).
  const buckets = new Map<number, number>();
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}_bucket{`) || !key.includes(match)) continue;
    const le = /le="([^"]+)"/.exec(key)?.[1];
    if (le === undefined || le === '+Inf') continue;
    buckets.set(Number(le), (buckets.get(Number(le)) ?? 0) + value - (before.get(key) ?? 0));
  }
  const p99 = [...buckets.entries()].sort((a, b) => a[0] - b[0]).find(([, n]) => count > 0 && n >= 0.99 * count)?.[0];
  return {
    produceRequests,
    recordsPerProduce: produceRequests > 0 ? records / produceRequests : 0,
    serverMeanMs: count > 0 ? (sum / count) * 1000 : NaN,
    serverP99AtMostMs: p99 === undefined ? undefined : p99 * 1000,
    eventLoopDelayP99Ms: (after.get('relay_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
    eventLoopDelayMaxMs: (after.get('relay_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000,
    loadShed: delta(before, after, 'relay_load_shed_total'),
  };
}
