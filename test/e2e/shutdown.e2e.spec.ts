import { eventually, openTestContext, type TestContext } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { exited, freePort, spawnRelay } from '../helpers/processes.js';
import { call } from '../helpers/relay.js';
import { StreamClient } from '../helpers/stream-client.js';
import { readTopic } from '../helpers/topic-reader.js';

// A rolling deploy sends SIGTERM: the relay stops accepting, closes its streams (announcing the
// peers offline), flushes what it accepted, and exits on its own, well within the grace period.
describe('SIGTERM to `relay all` with streams open, under load', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await openTestContext('shutdown');
  }, 60_000);

  afterAll(async () => {
    await ctx.cleanup();
  });

  it('closes the streams, publishes the peers offline, keeps every accepted message and exits 0', async () => {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const child = spawnRelay('all', {
      ...ctx.env,
      RELAY_HTTP_PORT: String(port),
      RELAY_RATE_SENDER_PER_SECOND: '100000',
      RELAY_RATE_SENDER_BURST: '100000',
    });
    await eventually(
      async () => ((await call(baseUrl, 'GET', '/readyz').catch(() => undefined))?.status === 200 ? true : undefined),
      60_000,
      'the relay ready',
    );

    const peers = [TestPeer.create(), TestPeer.create()];
    const streams = await Promise.all(
      peers.map((p) => StreamClient.open(`ws://127.0.0.1:${port}/api/v1/stream?address=${p.address}`)),
    );
    const sender = TestPeer.create();
    const accepted: string[] = [];
    let sending = true;
    const load = (async () => {
      for (let round = 0; sending && round < 2000; round++) {
        const messages = await Promise.all(
          Array.from({ length: 20 }, (_, i) => sender.message((peers[i % 2] as TestPeer).address)),
        );
        const answer = await call<{ results: { message_id: string; status: unknown }[] }>(
          baseUrl,
          'POST',
          '/api/v1/message/relay/batch',
          { messages },
        ).catch(() => undefined);
        if (!answer) return; // the listener is gone
        accepted.push(...answer.body.results.filter((r) => r.status === 'accepted').map((r) => r.message_id));
      }
    })();
    await eventually(async () => (accepted.length >= 200 ? true : undefined), 60_000, 'load flowing');

    child.kill('SIGTERM');
    const stopped = await Promise.race([
      exited(child).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000)),
    ]);
    sending = false;
    await load;
    if (!stopped) child.kill('SIGKILL');
    expect(stopped).toBe(true);
    expect(child.exitCode).toBe(0);
    expect(await Promise.all(streams.map((s) => s.closed))).toEqual([1001, 1001]);

    const presence = (await readTopic(ctx, ctx.topics.peers)).filter((e) => e.event.type === 'PeerPresenceChanged');
    for (const peer of peers) {
      const changes = presence
        .filter((e) => e.key === peer.address)
        .map((e) => (e.event.data as { online: boolean }).online);
      expect(changes).toEqual([true, false]);
    }
    const stored = new Set(
      (await readTopic(ctx, ctx.topics.mailbox)).map((e) => (e.event.data as { message_id?: string }).message_id),
    );
    expect(accepted.filter((id) => !stored.has(id))).toEqual([]);
  }, 180_000);
});
