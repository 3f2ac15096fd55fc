import { anchorServices } from '../../../src/app/roles.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { ConsumerLagMonitor } from '../../../src/kafka/consumer-lag.js';
import { watchedGroups } from '../../../src/app/role-observability.js';
import { startLocalChain, type LocalChain } from '../../helpers/chain.js';
import { eventually } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../../helpers/relay.js';

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

// The anchor role's metrics on a real local chain: messages anchored, the delay from acceptance
// to the anchor, the last anchor's time, and the anchor group's lag, which `all` watches only
// when anchoring is configured.
describe('the anchoring metrics', () => {
  let chain: LocalChain;
  let relay: RunningRelay;
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  const alice = TestPeer.create();
  const bob = TestPeer.create();

  beforeAll(async () => {
    chain = await startLocalChain();
    relay = await startRelay('ops_anchor_metrics', {
      ...chain.env,
      RELAY_ANCHOR_INTERVAL_SECONDS: '1',
      RELAY_ANCHOR_CONFIRMATIONS: '1',
    });
    for (const peer of [alice, bob])
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
  }, 180_000);

  afterAll(async () => {
    stop.abort();
    await running?.catch(() => undefined);
    await relay?.stop();
    await chain?.stop();
  });

  it('counts anchored messages, observes their delay and reports the anchor group lag', async () => {
    const groups = watchedGroups('all', relay.ctx);
    expect(groups.map((g) => g.consumer)).toEqual(['projector', 'presence', 'router', 'anchor']);
    const monitor = new ConsumerLagMonitor(
      () => relay.ctx.kafkaAdmin(),
      groups,
      relay.ctx.metrics,
      relay.ctx.log,
      1000,
    );
    const startedAt = Math.floor(Date.now() / 1000);
    running = runServices([...anchorServices(relay.ctx, true), monitor], stop.signal, relay.ctx.log);
    for (let i = 0; i < 3; i++)
      expect(
        (await call(relay.baseUrl, 'POST', '/api/v1/message/relay', await alice.message(bob.address))).status,
      ).toBe(202);

    const scrape = async () => (await fetch(`${relay.baseUrl}/metrics`)).text();
    const text = await eventually(
      async () => {
        const text = await scrape();
        return (sample(text, 'relay_anchored_messages_total') ?? 0) >= 3 &&
          /relay_consumer_lag_records\{consumer="anchor"/.test(text)
          ? text
          : undefined;
      },
      60_000,
      'three messages anchored and the anchor group measured',
    );
    expect(sample(text, 'relay_anchor_delay_seconds_count')).toBeGreaterThanOrEqual(1);
    // Set by this run's anchors, not left at zero.
    expect(sample(text, 'relay_anchor_last_success_timestamp_seconds')).toBeGreaterThanOrEqual(startedAt);
  });
});
