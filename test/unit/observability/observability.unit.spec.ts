import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDevCerts } from '../../../src/cli/dev-certs.js';
import { partitionLags } from '../../../src/kafka/consumer-lag.js';
import { MetricsServer } from '../../../src/app/metrics-server.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { createLogger } from '../../../src/observability/logger.js';

describe('partitionLags', () => {
  it('counts the records after the committed offset, per partition', () => {
    const lags = partitionLags(
      'mailbox',
      [
        { partition: 0, low: '0', high: '120' },
        { partition: 1, low: '0', high: '7' },
      ],
      [
        { partition: 0, offset: '100' },
        { partition: 1, offset: '7' },
      ],
    );
    expect(lags).toEqual([
      { topic: 'mailbox', partition: 0, lag: 20 },
      { topic: 'mailbox', partition: 1, lag: 0 },
    ]);
  });

  it('leaves out partitions the group never committed, and counts only records retention kept', () => {
    const lags = partitionLags(
      't',
      [
        { partition: 0, low: '0', high: '50' },
        { partition: 1, low: '40', high: '50' },
      ],
      [
        { partition: 0, offset: '-1' },
        { partition: 1, offset: '10' },
      ],
    );
    expect(lags).toEqual([{ topic: 't', partition: 1, lag: 10 }]);
  });
});

describe('MetricsServer', () => {
  const log = createLogger('error', {});

  it('serves /metrics, /healthz and /readyz, and answers 503 with the failing dependency', async () => {
    const metrics = new Metrics();
    metrics.consumerLag.set({ consumer: 'projector', topic: 't', partition: '0' }, 3);
    const checks = {
      up: () => Promise.resolve(),
      down: () => Promise.reject(new Error('refused')),
    };
    metrics.observeReadiness(checks);
    const server = new MetricsServer({ host: '127.0.0.1', port: 0 }, metrics, checks, log);
    const stop = new AbortController();
    const running = server.run(stop.signal);
    try {
      const { port } = await server.address();
      const base = `http://127.0.0.1:${port}`;
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toContain('relay_consumer_lag_records{consumer="projector",topic="t",partition="0"} 3');
      expect(text).toContain('relay_dependency_up{dependency="up"} 1');
      expect(text).toContain('relay_dependency_up{dependency="down"} 0');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not_ready', down: ['down'] });
      expect((await fetch(`${base}/nothing`)).status).toBe(404);
    } finally {
      stop.abort();
      await running;
    }
  });
});

describe('relay_tls_certificate_expiry_timestamp_seconds', () => {
  const series = 'relay_tls_certificate_expiry_timestamp_seconds{certificate="ingress"}';
  const valueIn = (text: string) =>
    text
      .split('\n')
      .find((l) => l.startsWith(`${series} `))
      ?.slice(series.length + 1);

  it('is the notAfter of the certificate file, and absent while the file cannot be read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-cert-metric-'));
    try {
      const certs = await makeDevCerts(join(dir, 'certs'));
      const metrics = new Metrics();
      metrics.observeCertificate(certs.cert);
      const notAfter = Date.parse(new X509Certificate(readFileSync(certs.cert)).validTo) / 1000;
      expect(Number(valueIn(await metrics.registry.metrics()))).toBe(notAfter);
      rmSync(certs.cert);
      expect(valueIn(await metrics.registry.metrics())).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
