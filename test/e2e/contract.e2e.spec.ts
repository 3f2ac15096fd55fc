import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import WebSocket from 'ws';
import { ApiKeyStore } from '../../src/ingress/api-keys.js';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type Answer, type RunningRelay } from '../helpers/relay.js';

// The contract test: the real relay, every operation of the OpenAPI document it serves called
// for its success and for each documented error status, and every answer (status, content type,
// body) validated against that document with Ajv. At the end, every (operation, status) of the
// document must have been seen, except the few listed below that no client can provoke.

// ajv-formats is CommonJS; under ESM its default export is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => void;

type Json = Record<string, unknown>;
interface ResponseSpec {
  readonly content?: Record<string, { readonly schema: Json }>;
}
interface OperationSpec {
  readonly operationId: string;
  readonly responses: Record<string, ResponseSpec>;
}

/**
 * Statuses the document lists that a test cannot bring about from outside without breaking the
 * shared stack: a failure inside the relay, a dependency down, a full producer queue, and a
 * proof, which needs an anchored message on a chain (test/e2e/anchoring.e2e.spec.ts reads one).
 */
const UNREACHABLE: Readonly<Record<string, readonly number[]>> = {
  '*': [500, 503],
  messageProof: [200],
};

describe('contract: every response of the real relay matches the OpenAPI document it serves', () => {
  let relay: RunningRelay;
  let document: Json;
  let operations: Map<string, OperationSpec>;
  let ajv: Ajv2020;
  const compiled = new Map<string, ValidateFunction>();
  const seen = new Set<string>();
  let key: string;
  let readOnlyKey: string;
  let writeOnlyKey: string;
  const alice = TestPeer.create('EdDSA');
  const bob = TestPeer.create('ES256');
  // Failed authentications count per client address: each refused call comes from its own.
  const stranger = () => ({ 'x-forwarded-for': `198.51.${randomBytes(1)[0] ?? 0}.${randomBytes(1)[0] ?? 0}` });
  const EXHAUSTED = '203.0.113.9';

  const validatorFor = (schema: Json): ValidateFunction => {
    const id = JSON.stringify(schema);
    let validate = compiled.get(id);
    if (!validate) {
      // The document's own components travel with each schema, so its $refs resolve as they are.
      validate = ajv.compile({ ...schema, components: document['components'] });
      compiled.set(id, validate);
    }
    return validate;
  };

  /** Checks an answer against the document's response for (operation, status), and records it. */
  function check(operationId: string, answer: { status: number; contentType: string; body: unknown }): void {
    const op = operations.get(operationId);
    expect(op).toBeDefined();
    const response = op?.responses[String(answer.status)];
    if (!response)
      throw new Error(
        `${operationId} answered ${answer.status}, which the document does not list: ${JSON.stringify(answer.body)}`,
      );
    seen.add(`${operationId} ${answer.status}`);
    if (!response.content) return;
    const mediaType = answer.contentType.split(';')[0]?.trim() ?? '';
    expect([operationId, answer.status, Object.keys(response.content)]).toEqual([
      operationId,
      answer.status,
      expect.arrayContaining([mediaType]),
    ]);
    const schema = response.content[mediaType]?.schema ?? {};
    const validate = validatorFor(schema);
    if (!validate(answer.body)) {
      throw new Error(
        `${operationId} ${answer.status} does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(answer.body).slice(0, 500)}`,
      );
    }
  }

  /** One HTTP call of an operation, checked; resolves with the answer. */
  async function exercise<T = Json>(
    operationId: string,
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; key?: string | null; status: number },
  ): Promise<Answer<T>> {
    const headers = { ...(options.key === null ? {} : { 'x-api-key': options.key ?? key }), ...options.headers };
    const answer = await call<T>(relay.baseUrl, method, path, options.body, headers);
    check(operationId, answer);
    expect([operationId, answer.status]).toEqual([operationId, options.status]);
    return answer;
  }

  const tokenFor = async (peer: TestPeer): Promise<string> => {
    const challenge = await exercise('authChallenge', 'POST', '/api/v1/auth/challenge', {
      body: { address: peer.address },
      status: 200,
    });
    const proof = await peer.sign({
      address: peer.address,
      nonce: challenge.body['nonce'],
      iat: Math.floor(Date.now() / 1000),
    });
    const token = await exercise('authToken', 'POST', '/api/v1/auth/token', { body: { proof }, status: 200 });
    return token.body['access_token'] as string;
  };

  /** A stream upgrade over plain HTTP: the 101, or the refusal with its problem document. */
  const upgrade = (
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; contentType: string; body: unknown }> =>
    new Promise((resolve, reject) => {
      const req = request(`${relay.baseUrl}${path}`, {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'),
          ...headers,
        },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, contentType: '', body: undefined });
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'] ?? '',
            body: text ? (JSON.parse(text) as unknown) : undefined,
          }),
        );
      });
      req.on('error', reject);
      req.end();
    });

  beforeAll(async () => {
    relay = await startRelay('contract', {
      RELAY_AUTH: 'required',
      RELAY_TRUSTED_PROXIES: '127.0.0.1,::1',
      RELAY_RATE_AUTH_FAILURES_PER_MINUTE: '1',
      RELAY_RATE_AUTH_FAILURES_BURST: '3',
      RELAY_STREAMS_PER_ADDRESS: '1',
    });
    const keys = new ApiKeyStore(relay.ctx.pool);
    key = (await keys.create('contract')).key;
    readOnlyKey = (await keys.create('contract read-only', ['peers:read'])).key;
    writeOnlyKey = (await keys.create('contract peers:write only', ['peers:write'])).key;
    const served = await call<Json>(relay.baseUrl, 'GET', '/api/v1/openapi.json');
    expect(served.status).toBe(200);
    document = served.body;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    operations = new Map(
      Object.values(document['paths'] as Record<string, Record<string, OperationSpec>>).flatMap((item) =>
        Object.values(item).map((op) => [op.operationId, op] as const),
      ),
    );
    check('openApiDocument', served);
    // Spend the failed-authentication budget of one client address, for the 429s below.
    for (let i = 0; i < 4; i++)
      await call(relay.baseUrl, 'GET', '/api/v1/peers/discover', undefined, {
        'x-api-key': 'rk_nope',
        'x-forwarded-for': EXHAUSTED,
      });
  }, 90_000);

  afterAll(async () => {
    await relay?.stop();
  });

  it('serves a valid OpenAPI 3.1 document', async () => {
    expect(document['openapi']).toBe('3.1.0');
    await expect(
      SwaggerParser.validate(structuredClone(document) as unknown as Parameters<typeof SwaggerParser.validate>[0]),
    ).resolves.toBeDefined();
  });

  it('answers the unauthenticated endpoints as documented', async () => {
    await exercise('health', 'GET', '/healthz', { key: null, status: 200 });
    await exercise('readiness', 'GET', '/readyz', { key: null, status: 200 });
    await exercise('jwks', 'GET', '/.well-known/jwks.json', { key: null, status: 200 });
    await exercise('metrics', 'GET', '/metrics', { key: null, status: 200 });
  });

  it('answers the errors every gated operation shares: 401, 403, 429, and those of a body', async () => {
    const gated: { id: string; method: string; path: string; scope?: 'write' | 'read'; body?: Json }[] = [
      { id: 'authChallenge', method: 'POST', path: '/api/v1/auth/challenge', body: { address: alice.address } },
      { id: 'authToken', method: 'POST', path: '/api/v1/auth/token', body: { proof: 'x' } },
      {
        id: 'registerPeer',
        method: 'POST',
        path: '/api/v1/peer/register',
        scope: 'write',
        body: { registration: 'x' },
      },
      { id: 'discoverPeers', method: 'GET', path: `/api/v1/peers/discover?address=${alice.address}`, scope: 'read' },
      { id: 'getPeer', method: 'GET', path: `/api/v1/peers/${alice.address}`, scope: 'read' },
      { id: 'relayMessage', method: 'POST', path: '/api/v1/message/relay', scope: 'write', body: {} },
      { id: 'relayBatch', method: 'POST', path: '/api/v1/message/relay/batch', scope: 'write', body: { messages: [] } },
      { id: 'readMailbox', method: 'GET', path: `/api/v1/messages?address=${alice.address}`, scope: 'read' },
      { id: 'messageProof', method: 'GET', path: `/api/v1/messages/${randomUUID()}/proof`, scope: 'read' },
      {
        id: 'acknowledgeMessages',
        method: 'POST',
        path: '/api/v1/messages/ack',
        scope: 'read',
        body: { address: alice.address, message_ids: [randomUUID()] },
      },
    ];
    for (const op of gated) {
      await exercise(op.id, op.method, op.path, { body: op.body, key: null, status: 401 });
      await exercise(op.id, op.method, op.path, { body: op.body, key: 'rk_unknown', headers: stranger(), status: 401 });
      await exercise(op.id, op.method, op.path, {
        body: op.body,
        headers: { 'x-forwarded-for': EXHAUSTED },
        status: 429,
      });
      // The scope is checked before the body is read: a key without it is refused with 403.
      const lacking = op.scope === 'write' ? readOnlyKey : writeOnlyKey;
      if (op.scope) await exercise(op.id, op.method, op.path, { body: op.body, key: lacking, status: 403 });
      if (op.body === undefined) continue;
      await exercise(op.id, op.method, op.path, { body: '{', status: 400 });
      await exercise(op.id, op.method, op.path, { body: 'x', headers: { 'content-type': 'text/plain' }, status: 415 });
      const limit = op.id === 'relayBatch' ? 500 * (65_536 + 12_288) : op.id === 'relayMessage' ? 131_072 : 65_536;
      await exercise(op.id, op.method, op.path, { body: JSON.stringify({ pad: 'x'.repeat(limit) }), status: 413 });
    }
  }, 120_000);

  it('registers peers, refuses bad and superseded registrations, and reads them back', async () => {
    const later = await alice.registration({ iat: Math.floor(Date.now() / 1000) });
    await exercise('registerPeer', 'POST', '/api/v1/peer/register', { body: later, status: 202 });
    await exercise('registerPeer', 'POST', '/api/v1/peer/register', { body: await bob.registration(), status: 202 });
    await exercise('registerPeer', 'POST', '/api/v1/peer/register', {
      body: { registration: 'a.b.c' },
      headers: stranger(),
      status: 401,
    });
    await exercise('registerPeer', 'POST', '/api/v1/peer/register', { body: {}, status: 400 });
    await eventually(async () =>
      (await call(relay.baseUrl, 'GET', `/api/v1/peers/${alice.address}`, undefined, { 'x-api-key': key })).status ===
      200
        ? true
        : undefined,
    );
    const earlier = await alice.registration({
      iat: Math.floor(Date.now() / 1000) - 60,
      connection_info: { transport: 'older' },
    });
    const superseded = await exercise('registerPeer', 'POST', '/api/v1/peer/register', { body: earlier, status: 409 });
    expect(superseded.body['code']).toBe('registration_superseded');
    await exercise('getPeer', 'GET', `/api/v1/peers/${alice.address}`, { status: 200 });
    await exercise('getPeer', 'GET', `/api/v1/peers/${TestPeer.create().address}`, { status: 404 });
    await exercise('getPeer', 'GET', '/api/v1/peers/not-an-address', { status: 400 });
    await exercise('discoverPeers', 'GET', `/api/v1/peers/discover?address=${alice.address}&limit=5`, { status: 200 });
    await exercise('discoverPeers', 'GET', `/api/v1/peers/discover?address=${alice.address}&limit=0`, { status: 400 });
  }, 60_000);

  it('issues tokens and refuses bad proofs and nonces', async () => {
    await exercise('authChallenge', 'POST', '/api/v1/auth/challenge', { body: { address: 'short' }, status: 400 });
    await tokenFor(alice);
    await exercise('authToken', 'POST', '/api/v1/auth/token', {
      body: { proof: 'a.b.c' },
      headers: stranger(),
      status: 401,
    });
    const stale = await alice.sign({ address: alice.address, nonce: 'n', iat: Math.floor(Date.now() / 1000) - 3600 });
    expect(
      (
        await exercise('authToken', 'POST', '/api/v1/auth/token', {
          body: { proof: stale },
          headers: stranger(),
          status: 401,
        })
      ).body['code'],
    ).toBe('stale_signature');
    const unknown = await alice.sign({
      address: alice.address,
      nonce: 'never-issued',
      iat: Math.floor(Date.now() / 1000),
    });
    expect(
      (
        await exercise('authToken', 'POST', '/api/v1/auth/token', {
          body: { proof: unknown },
          headers: stranger(),
          status: 401,
        })
      ).body['code'],
    ).toBe('invalid_nonce');
    await exercise('authToken', 'POST', '/api/v1/auth/token', { body: { proof: '' }, status: 400 });
  });

  it('relays, reads, proves and acknowledges messages, with their errors', async () => {
    const message = await bob.message(alice.address);
    await exercise('relayMessage', 'POST', '/api/v1/message/relay', { body: message, status: 202 });
    await exercise('relayMessage', 'POST', '/api/v1/message/relay', {
      body: { ...message, message_id: 'x' },
      status: 400,
    });
    const forged = await bob.message(alice.address, 'other', { signed: { to: bob.address } });
    await exercise('relayMessage', 'POST', '/api/v1/message/relay', { body: forged, status: 401 });
    const conflict = await bob.message(alice.address, 'different content', { messageId: message['message_id'] });
    expect(
      (await exercise('relayMessage', 'POST', '/api/v1/message/relay', { body: conflict, status: 409 })).body['code'],
    ).toBe('message_id_conflict');
    const batch = await exercise<Json>('relayBatch', 'POST', '/api/v1/message/relay/batch', {
      body: {
        messages: [
          await bob.message(alice.address),
          { ...(await bob.message(alice.address)), signature: 'a.b.c' },
          'not an object',
        ],
      },
      status: 200,
    });
    expect((batch.body['results'] as Json[]).map((r) => r['status'])).toEqual(['accepted', 401, 400]);
    await exercise('relayBatch', 'POST', '/api/v1/message/relay/batch', { body: { messages: [] }, status: 400 });

    const aliceToken = await tokenFor(alice);
    const bobToken = await tokenFor(bob);
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const page = await exercise<Json>('readMailbox', 'GET', `/api/v1/messages?address=${alice.address}`, {
      headers: bearer(aliceToken),
      status: 200,
    });
    await exercise('readMailbox', 'GET', `/api/v1/messages?address=${alice.address}`, {
      headers: stranger(),
      status: 401,
    });
    await exercise('readMailbox', 'GET', `/api/v1/messages?address=${alice.address}`, {
      headers: { ...bearer('nope'), ...stranger() },
      status: 401,
    });
    await exercise('readMailbox', 'GET', `/api/v1/messages?address=${alice.address}`, {
      headers: bearer(bobToken),
      status: 403,
    });
    await exercise('readMailbox', 'GET', `/api/v1/messages?address=${alice.address}&after=bm9wZQ`, {
      headers: bearer(aliceToken),
      status: 400,
    });

    await exercise('messageProof', 'GET', '/api/v1/messages/not-a-uuid/proof', {
      headers: bearer(aliceToken),
      status: 400,
    });
    await exercise('messageProof', 'GET', `/api/v1/messages/${randomUUID()}/proof`, {
      headers: bearer(aliceToken),
      status: 404,
    });
    // Read back, the message is known but no anchor batch holds it yet.
    await exercise('messageProof', 'GET', `/api/v1/messages/${message['message_id']}/proof`, {
      headers: bearer(aliceToken),
      status: 409,
    });

    const ids = ((page.body['messages'] as Json[] | undefined) ?? []).map((m) => m['message_id'] as string);
    expect(ids).toContain(message['message_id']);
    await exercise('acknowledgeMessages', 'POST', '/api/v1/messages/ack', {
      body: { address: alice.address, message_ids: [...ids, randomUUID()] },
      headers: bearer(aliceToken),
      status: 200,
    });
    await exercise('acknowledgeMessages', 'POST', '/api/v1/messages/ack', {
      body: { address: alice.address, message_ids: ['x'] },
      headers: bearer(aliceToken),
      status: 400,
    });
    await exercise('acknowledgeMessages', 'POST', '/api/v1/messages/ack', {
      body: { address: alice.address, message_ids: [randomUUID()] },
      headers: stranger(),
      status: 401,
    });
    await exercise('acknowledgeMessages', 'POST', '/api/v1/messages/ack', {
      body: { address: alice.address, message_ids: [randomUUID()] },
      headers: bearer(bobToken),
      status: 403,
    });
  }, 60_000);

  it('opens the stream, and its frames match the frame schemas; refused upgrades are problem documents', async () => {
    const token = await tokenFor(bob);
    const auth = { 'x-api-key': key, authorization: `Bearer ${token}` };
    const stream = `/api/v1/stream?address=${bob.address}`;
    check('openStream', await upgrade('/api/v1/stream?address=short', auth));
    check('openStream', await upgrade(stream, { ...stranger() }));
    check('openStream', await upgrade(stream, { 'x-api-key': readOnlyKey, authorization: `Bearer ${token}` }));
    check('openStream', await upgrade(stream, { 'x-api-key': key, 'x-forwarded-for': EXHAUSTED }));
    await exercise('openStream', 'GET', stream, { headers: { authorization: `Bearer ${token}` }, status: 404 });

    await exercise('relayMessage', 'POST', '/api/v1/message/relay', {
      body: await alice.message(bob.address),
      status: 202,
    });
    const frames: Json[] = [];
    const ws = new WebSocket(`${relay.wsUrl}${stream}`, { headers: auth });
    ws.on('message', (data) => frames.push(JSON.parse((data as Buffer).toString()) as Json));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    seen.add('openStream 101');
    // A second stream of the same address is over RELAY_STREAMS_PER_ADDRESS (1).
    check('openStream', await upgrade(stream, auth));
    const message = await eventually(
      async () => frames.find((f) => f['type'] === 'message'),
      15_000,
      'a message frame',
    );
    ws.send(JSON.stringify({ type: 'ack', message_ids: [message['message_id']] }));
    ws.send('not json');
    await eventually(
      async () =>
        frames.some((f) => f['type'] === 'ack_result') && frames.some((f) => f['type'] === 'error') ? true : undefined,
      15_000,
      'answers',
    );
    ws.close();
    const schemas = document['components'] as { schemas: Record<string, Json> };
    const byType: Record<string, string> = {
      message: 'MessageFrame',
      ack_result: 'AckResultFrame',
      error: 'ErrorFrame',
    };
    for (const frame of frames) {
      const validate = validatorFor({ $ref: `#/components/schemas/${byType[frame['type'] as string] ?? 'missing'}` });
      expect(schemas.schemas[byType[frame['type'] as string] ?? 'missing']).toBeDefined();
      if (!validate(frame))
        throw new Error(`a ${String(frame['type'])} frame does not match: ${ajv.errorsText(validate.errors)}`);
    }
  }, 60_000);

  it('has exercised every status of every operation in the document', () => {
    const missing: string[] = [];
    for (const [operationId, op] of operations) {
      for (const status of Object.keys(op.responses).map(Number)) {
        const unreachable = [...(UNREACHABLE['*'] ?? []), ...(UNREACHABLE[operationId] ?? [])];
        if (!unreachable.includes(status) && !seen.has(`${operationId} ${status}`))
          missing.push(`${operationId} ${status}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
