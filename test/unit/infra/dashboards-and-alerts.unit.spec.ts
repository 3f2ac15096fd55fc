import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Metrics } from '../../../src/observability/metrics.js';

// The dashboard and the alert rules are code that names the relay's metrics: a renamed metric
// would leave a panel empty or an alert silent without any error. promtool checks the PromQL;
// this checks every name against the metrics the relay registers.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}
const rules = (parse(read('infra/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));

/** Every series name the relay exports: its metrics, with a histogram's _bucket, _sum and _count. */
function exportedNames(): Set<string> {
  const metrics = new Metrics();
  metrics.observeReadiness({});
  metrics.observeCertificate('/nonexistent');
  const names = new Set<string>();
  for (const metric of metrics.registry.getMetricsAsArray()) {
    names.add(metric.name);
    if (metric.constructor.name === 'Histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
  }
  return names;
}
const exported = exportedNames();

/** The metric names a PromQL expression selects (relay_* series, recording rules and up), labels and strings left out. */
function namesIn(expr: string): string[] {
  const code = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  return [...code.matchAll(/\b(relay_[a-z0-9_]+|relay:[a-z0-9_:]+|up)\b(?!\s*\()/g)].map((m) => m[1] as string);
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}
const dashboard = JSON.parse(read('infra/grafana/relay-operations.json')) as { uid: string; panels: Panel[] };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const expressions = panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
);

describe('the Grafana dashboard', () => {
  it('has panels, each with at least one query', () => {
    expect(panels.length).toBeGreaterThan(10);
    expect(panels.filter((p) => (p.targets?.length ?? 0) === 0).map((p) => p.title)).toEqual([]);
  });

  it('queries only metrics the relay exports, or rules alerts.yml records', () => {
    const unknown = expressions.flatMap(({ where, expr }) => {
      const names = namesIn(expr);
      if (names.length === 0) return [`${where}: names no metric: ${expr}`];
      return names.filter((n) => !exported.has(n) && !recorded.has(n) && n !== 'up').map((n) => `${where}: ${n}`);
    });
    expect(unknown).toEqual([]);
  });

  it('covers throughput, latency, lag, errors and saturation', () => {
    const all = expressions.map((e) => e.expr).join('\n');
    for (const name of [
      'relay_events_produced_total',
      'relay_http_request_duration_seconds_bucket',
      'relay_projection_delay_seconds_bucket',
      'relay_stream_delivery_delay_seconds_bucket',
      'relay:consumer_lag_records:sum',
      'relay_events_dead_lettered_total',
      'relay_load_shed_total',
      'relay_process_cpu_seconds_total',
      'relay_producer_queue_records',
    ]) {
      expect(all).toContain(name);
    }
  });

  it('is provisioned from the directory it is mounted at', () => {
    const provider = (
      parse(read('infra/grafana/dashboards.yml')) as { providers: { type: string; options: { path: string } }[] }
    ).providers[0];
    expect(provider).toMatchObject({ type: 'file', options: { path: '/etc/grafana/provisioning/dashboards/relay' } });
    const sources = (parse(read('infra/grafana/datasources.yml')) as { datasources: { type: string }[] }).datasources;
    expect(sources.map((s) => s.type)).toEqual(['prometheus']);
  });
});

describe('the alert rules', () => {
  it('name only metrics the relay exports, or rules recorded before them', () => {
    const unknown = rules.flatMap((rule) => {
      const names = namesIn(rule.expr);
      if (names.length === 0) return [`${rule.alert ?? rule.record}: names no metric`];
      return names
        .filter((n) => !exported.has(n) && !recorded.has(n) && n !== 'up')
        .map((n) => `${rule.alert ?? rule.record}: ${n}`);
    });
    expect(unknown).toEqual([]);
  });

  it('each have a runbook section in docs/guides/operations.md and a promtool test', () => {
    const runbook = read('docs/guides/operations.md');
    const headings = new Set([...runbook.matchAll(/^#{2,4} (\w+)\s*$/gm)].map((m) => (m[1] as string).toLowerCase()));
    const tests = read('infra/prometheus/alerts.test.yml');
    const alerts = [...new Set(rules.flatMap((r) => (r.alert ? [r.alert] : [])))];
    expect(alerts.length).toBeGreaterThanOrEqual(9);
    for (const alert of alerts) {
      const rule = rules.find((r) => r.alert === alert);
      expect({ alert, runbook: rule?.annotations?.['runbook_url'] }).toEqual({
        alert,
        runbook: `docs/guides/operations.md#${alert.toLowerCase()}`,
      });
      expect({ alert, documented: headings.has(alert.toLowerCase()) }).toEqual({ alert, documented: true });
      expect({ alert, tested: tests.includes(`alertname: ${alert}\n`) }).toEqual({ alert, tested: true });
    }
  });
});
