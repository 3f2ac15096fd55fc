import { anchorServices } from '../../src/app/roles.js';
import { ApiKeyStore } from '../../src/ingress/api-keys.js';
import { runServices } from '../../src/lifecycle/service.js';
import { startLocalChain, type LocalChain } from '../helpers/chain.js';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';

// With RELAY_AUTH=required, a message's proof is for its recipient and its sender only.
describe('the proof endpoint with auth required', () => {
  let chain: LocalChain;
  let relay: RunningRelay;
  let apiKey: string;
  let stopAnchor: (() => Promise<void>) | undefined;
  const alice = TestPeer.create('ES256');
  const bob = TestPeer.create();
  const carol = TestPeer.create();

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    call(relay.baseUrl, method, path, body, { 'x-api-key': apiKey, ...headers });

  const tokenFor = async (peer: TestPeer): Promise<string> => {
    const challenge = await api('POST', '/api/v1/auth/challenge', { address: peer.address });
    const proof = await peer.sign({
      address: peer.address,
      nonce: challenge.body['nonce'],
      iat: Math.floor(Date.now() / 1000),
    });
    const token = await api('POST', '/api/v1/auth/token', { proof });
    expect(token.status).toBe(200);
    return token.body['access_token'] as string;
  };

  beforeAll(async () => {
    chain = await startLocalChain();
    relay = await startRelay('anchoring_auth', {
      ...chain.env,
      RELAY_AUTH: 'required',
      RELAY_ANCHOR_INTERVAL_SECONDS: '1',
    });
    apiKey = (await new ApiKeyStore(relay.ctx.pool).create('test')).key;
    const controller = new AbortController();
    const running = runServices(anchorServices(relay.ctx, true), controller.signal, relay.ctx.log);
    running.catch(() => undefined);
    stopAnchor = async () => {
      controller.abort();
      await running.catch(() => undefined);
    };
    for (const peer of [alice, bob, carol])
      expect((await api('POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
  }, 180_000);

  afterAll(async () => {
    await stopAnchor?.();
    await relay?.stop();
    await chain?.stop();
  });

  it('serves the proof to the recipient and the sender, and to no one else', async () => {
    const message = await alice.message(bob.address);
    expect((await api('POST', '/api/v1/message/relay', message)).status).toBe(202);
    const id = message['message_id'] as string;
    const path = `/api/v1/messages/${id}/proof`;
    const bobToken = await tokenFor(bob);
    const forBob = await eventually(
      async () => {
        const answer = await api('GET', path, undefined, { authorization: `Bearer ${bobToken}` });
        return answer.status === 200 ? answer : undefined;
      },
      90_000,
      'the proof, for the recipient',
    );
    expect(forBob.body['leaf']).toMatchObject({ message_id: id, from_address: alice.address, to_address: bob.address });

    const forAlice = await api('GET', path, undefined, { authorization: `Bearer ${await tokenFor(alice)}` });
    expect(forAlice.status).toBe(200);
    expect(forAlice.body['root']).toBe(forBob.body['root']);

    const forCarol = await api('GET', path, undefined, { authorization: `Bearer ${await tokenFor(carol)}` });
    expect(forCarol.status).toBe(403);
    expect(forCarol.body['code']).toBe('address_mismatch');
    const anonymous = await api('GET', path);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body['code']).toBe('missing_token');
    const withoutKey = await call(relay.baseUrl, 'GET', path, undefined, { authorization: `Bearer ${bobToken}` });
    expect(withoutKey.status).toBe(401);
  }, 120_000);
});
