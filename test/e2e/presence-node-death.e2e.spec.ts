import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { PresenceStore } from '../../src/presence/presence-store.js';
import { eventually, openTestContext, type TestContext } from '../helpers/context.js';
import { exited, spawnRelay } from '../helpers/processes.js';
import { TestPeer } from '../helpers/peer.js';

const TTL_SECONDS = 6;

// A node that dies without closing its sockets must not leave its peers online for longer than
// the presence TTL (60 s by default; shortened here).
describe('an ingress node that dies with open streams', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await openTestContext('node_death', { RELAY_PRESENCE_TTL_SECONDS: String(TTL_SECONDS) });
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('stops counting its peers online within one TTL', async () => {
    const port = 20_000 + (randomBytes(2).readUInt16BE(0) % 20_000);
    const node = spawnRelay('ingress', { ...ctx.env, RELAY_HTTP_PORT: String(port), RELAY_NODE_ID: 'doomed-node' });
    const peer = TestPeer.create();
    const presence = new PresenceStore(ctx.redis, ctx.config.redis.keyPrefix, TTL_SECONDS);
    const ws = await eventually(
      () =>
        new Promise<WebSocket | undefined>((resolve) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream?address=${peer.address}`);
          socket.once('open', () => resolve(socket));
          socket.once('error', () => resolve(undefined));
        }),
      60_000,
      'the stream to open',
    );
    ws.on('error', () => undefined);
    await eventually(async () => (await presence.onlineSince(peer.address)) ?? undefined, 10_000, 'the peer online');
    expect((await presence.holders([peer.address]))[0]).toEqual(['doomed-node']);

    node.kill('SIGKILL');
    await exited(node);
    const killedAt = Date.now();
    // No close was recorded: the peer still counts as online right after the crash...
    expect(await presence.onlineSince(peer.address)).toBeDefined();
    // ...and stops counting within one TTL, with no process left to say so.
    await eventually(
      async () => ((await presence.onlineSince(peer.address)) === undefined ? true : undefined),
      (TTL_SECONDS + 5) * 1000,
      'the peer offline',
    );
    expect(Date.now() - killedAt).toBeLessThanOrEqual((TTL_SECONDS + 5) * 1000);
  }, 120_000);
});
