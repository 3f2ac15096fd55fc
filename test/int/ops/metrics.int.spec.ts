import { expiryServices } from '../../../src/app/roles.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { ConsumerLagMonitor } from '../../../src/kafka/consumer-lag.js';
import { watchedGroups } from '../../../src/app/role-observability.js';
import { createLogger } from '../../../src/observability/logger.js';
import { eventually } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../../helpers/relay.js';
import { StreamClient } from '../../helpers/stream-client.js';

/** The value of one sample in a Prometheus text exposition, or undefined when it is absent. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('the operational metrics of a running relay', () => {
  let relay: RunningRelay;
  const alice = TestPeer.create('EdDSA');
  const bob = TestPeer.create('EdDSA');
  const scrape = async () => (await fetch(`${relay.baseUrl}/metrics`)).text();

  beforeAll(async () => {
    // Settled rows are purged at once, so one expiry pass both expires and purges.
    relay = await startRelay('ops_metrics', { RELAY_PURGE_AFTER_SECONDS: '0' });
    for (const peer of [alice, bob])
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  it('measures accept-to-row, accept-to-frame, online peers and the lag of every consumer group', async () => {
    const message = await alice.message(bob.address);
    expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).status).toBe(202);
    await eventually(
      async () => {
        const text = await scrape();
        return (sample(text, 'relay_projection_delay_seconds_count{projection="read_model"}') ?? 0) >= 3
          ? text
          : undefined;
      },
      15_000,
      'the registrations and the message projected',
    );

    const stream = await StreamClient.open(`${relay.wsUrl}/api/v1/stream?address=${bob.address}`);
    try {
      await stream.next((f) => f.type === 'message' && f['message_id'] === message['message_id'], 'the message');
      const text = await scrape();
      expect(sample(text, 'relay_stream_delivery_delay_seconds_count{source="backlog"}')).toBe(1);
      expect(sample(text, 'relay_stream_online_peers')).toBe(1);
      expect(sample(text, 'relay_stream_sockets')).toBe(1);
    } finally {
      await stream.close();
    }
    await eventually(
      async () => (sample(await scrape(), 'relay_stream_online_peers') === 0 ? true : undefined),
      10_000,
      'the peer offline',
    );

    const groups = watchedGroups('all', relay.ctx);
    expect(groups.map((g) => g.consumer)).toEqual(['projector', 'presence', 'router']);
    const monitor = new ConsumerLagMonitor(
      () => relay.ctx.kafkaAdmin(),
      groups,
      relay.ctx.metrics,
      createLogger('error'),
    );
    // Committed offsets trail the applied ones by up to a second: poll until the projector's is in.
    const mailbox = relay.ctx.topics.mailbox;
    const lag = await eventually(
      async () => {
        await monitor.measure();
        const text = await scrape();
        const lines = text
          .split('\n')
          .filter(
            (l) => l.startsWith('relay_consumer_lag_records{consumer="projector"') && l.includes(`topic="${mailbox}"`),
          );
        return lines.length > 0 && lines.every((l) => l.endsWith(' 0')) ? lines : undefined;
      },
      15_000,
      'the projector caught up on the mailbox topic',
    );
    expect(lag.length).toBeGreaterThan(0);
    expect(await scrape()).toMatch(/relay_consumer_lag_last_check_timestamp_seconds\{consumer="presence"\} \d/);
  });

  it('counts what the expiry role expires and purges', async () => {
    const message: Record<string, string> = {
      ...(await alice.message(bob.address)),
      expires_at: new Date(Date.now() + 1500).toISOString(),
    };
    expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).status).toBe(202);
    const before = sample(await scrape(), 'relay_messages_expired_total') ?? 0;
    await eventually(
      async () => {
        const { rows } = await relay.ctx.pool.query<{ due: boolean }>(
          'SELECT expires_at <= now() AS due FROM messages WHERE id = $1',
          [message['message_id']],
        );
        return rows[0]?.due ? true : undefined;
      },
      15_000,
      'the message projected and due',
    );
    const stop = new AbortController();
    const running = runServices(expiryServices(relay.ctx), stop.signal, relay.ctx.log);
    try {
      await eventually(
        async () => {
          const text = await scrape();
          return (sample(text, 'relay_messages_expired_total') ?? 0) > before &&
            (sample(text, 'relay_messages_purged_total') ?? 0) >= 1
            ? true
            : undefined;
        },
        30_000,
        'the message expired and its row purged',
      );
    } finally {
      stop.abort();
      await running;
    }
  });
});
