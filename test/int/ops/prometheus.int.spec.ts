import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { ConsumerLagMonitor } from '../../../src/kafka/consumer-lag.js';
import { watchedGroups } from '../../../src/app/role-observability.js';
import { eventually } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { exited, freePort } from '../../helpers/processes.js';
import { call, startRelay, type RunningRelay } from '../../helpers/relay.js';

// A real Prometheus (Debian's binary; infra/prometheus/check installs it) scrapes a running relay
// with the repository's alert rules loaded, and the queries an operator would run return data.

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('a real Prometheus scraping a running relay', () => {
  let relay: RunningRelay;
  let prometheus: ChildProcess;
  let promUrl: string;
  let dir: string;
  let log = '';
  const stopMonitor = new AbortController();
  let monitoring: Promise<void>;
  const alice = TestPeer.create('EdDSA');
  const bob = TestPeer.create('EdDSA');

  const query = async (promql: string): Promise<Sample[]> => {
    const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; data: { result: Sample[] }; error?: string };
    if (body.status !== 'success') throw new Error(`${promql}: ${body.error ?? response.status}`);
    return body.data.result;
  };
  const send = async (count: number) => {
    for (let i = 0; i < count; i++)
      expect(
        (await call(relay.baseUrl, 'POST', '/api/v1/message/relay', await alice.message(bob.address))).status,
      ).toBe(202);
  };

  beforeAll(async () => {
    relay = await startRelay('ops_prometheus');
    for (const peer of [alice, bob])
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
    // What a consuming role runs beside its consumer: the lag, read from Kafka (every second here).
    const monitor = new ConsumerLagMonitor(
      () => relay.ctx.kafkaAdmin(),
      watchedGroups('all', relay.ctx),
      relay.ctx.metrics,
      relay.ctx.log,
      1000,
    );
    monitoring = runServices([monitor], stopMonitor.signal, relay.ctx.log);

    dir = mkdtempSync(join(tmpdir(), 'relay-prometheus-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const target = new URL(relay.baseUrl).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${PROJECT_ROOT}infra/prometheus/alerts.yml']`,
        'scrape_configs:',
        '  - job_name: relay-ingress',
        `    static_configs: [{ targets: ['${target}'] }]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    prometheus.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    const spawned = new Promise<void>((resolve, reject) => {
      prometheus.once('spawn', resolve);
      prometheus.once('error', (error) =>
        reject(new Error(`could not start prometheus (run infra/prometheus/check to install it): ${error.message}`)),
      );
    });
    await spawned;
    await eventually(
      async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined),
      30_000,
      `Prometheus ready (${log})`,
    );
  }, 120_000);

  afterAll(async () => {
    stopMonitor.abort();
    await monitoring;
    if (prometheus) {
      prometheus.kill('SIGTERM');
      await exited(prometheus);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    await relay.stop();
  });

  it('scrapes the relay as up', async () => {
    const up = await eventually(
      async () => {
        const result = await query('up{job="relay-ingress"}');
        return result[0]?.value[1] === '1' ? result : undefined;
      },
      20_000,
      'the relay scraped',
    );
    expect(up).toHaveLength(1);
  });

  it('answers the accepted message rate', async () => {
    const mailbox = relay.ctx.topics.mailbox;
    // The counter's series starts at the first message: Prometheus must see it once before more
    // come, or rate() has no increase to show.
    await send(1);
    await eventually(
      async () =>
        (await query(`relay_events_produced_total{topic="${mailbox}"}`)).length > 0 &&
        (await query('relay_events_projected_total{type="MessageSent"}')).length > 0
          ? true
          : undefined,
      20_000,
      'the message counters scraped',
    );
    await send(5);
    const rate = await eventually(
      async () => {
        const result = await query(
          `sum(rate(relay_events_produced_total{job="relay-ingress", topic="${mailbox}"}[1m]))`,
        );
        return result.length === 1 && Number(result[0]?.value[1]) > 0 ? Number(result[0]?.value[1]) : undefined;
      },
      20_000,
      'a message rate above zero',
    );
    expect(rate).toBeGreaterThan(0);
    // The dashboard's accepted-message rate: MessageSent events applied by the projector.
    const projected = await eventually(
      async () => {
        const result = await query(
          'sum(rate(relay_events_projected_total{projection="read_model", type="MessageSent"}[1m]))',
        );
        return result.length === 1 && Number(result[0]?.value[1]) > 0 ? Number(result[0]?.value[1]) : undefined;
      },
      20_000,
      'a projected message rate above zero',
    );
    expect(projected).toBeGreaterThan(0);
  });

  it('answers the consumer lag per role, through the recording rule the alerts use', async () => {
    // The router's group starts at the end of the log and has a committed offset once it has read a message.
    await send(1);
    const lag = await eventually(
      async () => {
        const result = await query('relay:consumer_lag_records:sum');
        const consumers = result.map((s) => s.metric['consumer']).sort();
        return consumers.includes('projector') && consumers.includes('router') ? result : undefined;
      },
      30_000,
      'the lag of the projector and the router',
    );
    for (const sample of lag) expect(Number(sample.value[1])).toBeGreaterThanOrEqual(0);
    const perPartition = await query(
      `max by (consumer, topic, partition) (relay_consumer_lag_records{topic="${relay.ctx.topics.mailbox}"})`,
    );
    expect(perPartition.map((s) => s.metric['consumer'])).toEqual(expect.arrayContaining(['projector', 'router']));
  });
});
