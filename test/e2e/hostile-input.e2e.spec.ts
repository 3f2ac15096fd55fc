import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import WebSocket from 'ws';
import { ERROR_CODES } from '../../src/errors/codes.js';
import { ApiKeyStore } from '../../src/ingress/api-keys.js';
import { TestPeer } from '../helpers/peer.js';
import { startRelay, type RunningRelay } from '../helpers/relay.js';
import { recordCount } from '../helpers/topic-reader.js';

// Thousands of malformed, oversized, mistyped and mis-signed requests at every endpoint and at
// the stream. Every answer must be a 4xx problem document with a documented code; nothing may
// be written. A fixed seed keeps `npm test` repeatable; RELAY_FUZZ_RUNS runs longer
// (npm run fuzz).
const RUNS = Number(process.env['RELAY_FUZZ_RUNS'] ?? 300);
const SEED = Number(process.env['RELAY_FUZZ_SEED'] ?? 20261127);

describe('hostile input', () => {
  let relay: RunningRelay;
  let apiKey: string;
  const peer = TestPeer.create();
  let eventsBefore = 0;
  let mailboxBefore = 0;

  const counts = async () =>
    (await recordCount(relay.ctx, relay.ctx.topics.mailbox)) + (await recordCount(relay.ctx, relay.ctx.topics.peers));

  beforeAll(async () => {
    relay = await startRelay('hostile', { RELAY_AUTH: 'required' });
    apiKey = (await new ApiKeyStore(relay.ctx.pool).create('fuzz')).key;
    eventsBefore = await counts();
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const isProblem = (status: number, contentType: string, body: string): boolean => {
    if (status < 400 || status >= 500 || !contentType.startsWith('application/problem+json')) return false;
    const problem = JSON.parse(body) as { code?: string; status?: number };
    const known = problem.code !== undefined && Object.hasOwn(ERROR_CODES, problem.code);
    return known && ERROR_CODES[problem.code as keyof typeof ERROR_CODES].status === status && problem.status === status;
  };

  // Values of every JSON type, with the shapes the API expects mixed in: near-misses find more.
  const anyValue = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.string({ maxLength: 80 }),
    fc.constantFrom('', 'x'.repeat(70_000), randomUUID(), peer.address, `${peer.address}x`, 'a.b.c', '..', '🙂'.repeat(40), -1, 1e308, null),
    fc.array(fc.uuid(), { maxLength: 5 }),
  );
  const fields = ['message_id', 'from_address', 'to_address', 'message_type', 'encrypted_content', 'signature', 'registration', 'address', 'message_ids', 'messages', 'proof'];
  const bodyObject = fc.dictionary(fc.constantFrom(...fields, '__proto__', 'constructor', 'x'), anyValue, { maxKeys: 8 });
  const misSigned = fc.record({
    message_id: fc.uuid(),
    from_address: fc.constant(peer.address),
    to_address: fc.constant(peer.address),
    message_type: fc.string({ maxLength: 60 }),
    encrypted_content: fc.string({ maxLength: 200 }),
    signature: fc.oneof(
      fc.base64String({ maxLength: 200 }),
      fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((p) => p.join('.')),
      fc.constant('eyJhbGciOiJub25lIn0.e30.'),
    ),
  });
  const deepJson = fc.integer({ min: 17, max: 400 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));
  const rawBody = fc.oneof(
    bodyObject.map((o) => JSON.stringify(o)),
    misSigned.map((m) => JSON.stringify(m)),
    misSigned.map((m) => JSON.stringify({ messages: [m, m] })),
    fc.json(),
    fc.string({ maxLength: 200 }),
    deepJson,
    fc.constant('{"messages": ' + JSON.stringify(Array.from({ length: 501 }, () => ({}))) + '}'),
    fc.constant('{"a":'),
  );
  const headers = fc.record({
    key: fc.oneof(fc.constant(undefined), fc.constant('valid'), fc.string({ maxLength: 60 })),
    contentType: fc.constantFrom('application/json', 'text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', undefined),
    authorization: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 60 }), fc.constant('Bearer x.y.z')),
  });
  const query = fc.dictionary(fc.constantFrom('address', 'limit', 'after', 'cursor', 'x'), fc.oneof(fc.string({ maxLength: 60 }), fc.constant(peer.address), fc.integer().map(String)), { maxKeys: 4 });

  const posts = ['/api/v1/peer/register', '/api/v1/message/relay', '/api/v1/message/relay/batch', '/api/v1/messages/ack', '/api/v1/auth/challenge', '/api/v1/auth/token'];
  const gets = ['/api/v1/peers/discover', '/api/v1/messages', `/api/v1/peers/${peer.address}`, '/api/v1/peers/not-an-address', '/api/v1/nowhere'];

  it.each(posts)('POST %s answers every malformed body with a 4xx problem', async (path) => {
    await fc.assert(
      fc.asyncProperty(rawBody, headers, async (body, h) => {
        const requestHeaders: Record<string, string> = {};
        if (h.key !== undefined) requestHeaders['x-api-key'] = h.key === 'valid' ? apiKey : h.key;
        if (h.contentType !== undefined) requestHeaders['content-type'] = h.contentType;
        if (h.authorization !== undefined) requestHeaders['authorization'] = h.authorization;
        const response = await fetch(`${relay.baseUrl}${path}`, { method: 'POST', headers: requestHeaders, body });
        const text = await response.text();
        // The batch endpoint answers 200 with a result per message: every one must be a 4xx problem.
        if (response.status === 200 && path.endsWith('/batch')) {
          const { results } = JSON.parse(text) as { results: { status: number; code: string }[] };
          if (!results.every((r) => r.status >= 400 && r.status < 500 && Object.hasOwn(ERROR_CODES, r.code))) throw new Error(text.slice(0, 300));
          return;
        }
        if (!isProblem(response.status, response.headers.get('content-type') ?? '', text)) {
          throw new Error(`${response.status} ${text.slice(0, 300)}`);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, 300_000);

  it.each(gets)('GET %s answers every malformed query with a 4xx problem', async (path) => {
    await fc.assert(
      fc.asyncProperty(query, headers, async (q, h) => {
        const requestHeaders: Record<string, string> = {};
        if (h.key !== undefined) requestHeaders['x-api-key'] = h.key === 'valid' ? apiKey : h.key;
        if (h.authorization !== undefined) requestHeaders['authorization'] = h.authorization;
        const response = await fetch(`${relay.baseUrl}${path}?${new URLSearchParams(q).toString()}`, { headers: requestHeaders });
        const text = await response.text();
        // A valid key with a well-formed query may legitimately succeed (discover, a peer lookup).
        if (response.status === 200) return;
        if (!isProblem(response.status, response.headers.get('content-type') ?? '', text)) {
          throw new Error(`${response.status} ${text.slice(0, 300)}`);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, 300_000);

  it('refuses malformed stream upgrades with a 4xx problem', async () => {
    await checkUpgrades();
  }, 300_000);

  it('is still up after the HTTP and upgrade runs, and no event was written', async () => {
    expect((await fetch(`${relay.baseUrl}/healthz`)).status).toBe(200);
    expect(await counts()).toBe(eventsBefore);
    mailboxBefore = await recordCount(relay.ctx, relay.ctx.topics.mailbox);
  });

  const checkUpgrades = async () => {
    await fc.assert(
      fc.asyncProperty(query, headers, fc.constantFrom('/api/v1/stream', '/api/v1/streams', '/'), async (q, h, path) => {
        const requestHeaders: Record<string, string> = {};
        if (h.key !== undefined) requestHeaders['x-api-key'] = h.key === 'valid' ? apiKey : h.key;
        if (h.authorization !== undefined) requestHeaders['authorization'] = h.authorization;
        const outcome = await new Promise<{ status: number; contentType: string; body: string }>((resolve) => {
          const ws = new WebSocket(`${relay.wsUrl}${path}?${new URLSearchParams(q).toString()}`, { headers: requestHeaders });
          ws.once('unexpected-response', (_req, res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
          });
          ws.once('open', () => {
            ws.close();
            resolve({ status: 101, contentType: '', body: '' });
          });
          ws.once('error', () => undefined);
        });
        if (!isProblem(outcome.status, outcome.contentType, outcome.body)) throw new Error(`${outcome.status} ${outcome.body.slice(0, 300)}`);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  };

  it('answers malformed frames on an open stream with error frames and keeps the socket open', async () => {
    const challenge = await fetch(`${relay.baseUrl}/api/v1/auth/challenge`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ address: peer.address }),
    }).then((r) => r.json() as Promise<{ nonce: string }>);
    const proof = await peer.sign({ address: peer.address, nonce: challenge.nonce, iat: Math.floor(Date.now() / 1000) });
    const { access_token: token } = await fetch(`${relay.baseUrl}/api/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ proof }),
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const ws = new WebSocket(`${relay.wsUrl}/api/v1/stream?address=${peer.address}`, { headers: { 'x-api-key': apiKey, authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const replies: { type: string; problem?: { status: number; code: string }; acknowledged?: number }[] = [];
    ws.on('message', (data) => replies.push(JSON.parse((data as Buffer).toString()) as (typeof replies)[number]));
    // Frames over the 64 KiB frame limit close the socket instead (checked below).
    const frame = fc
      .oneof(
        fc.string({ maxLength: 100 }),
        fc.json(),
        bodyObject.map((o) => JSON.stringify({ type: 'ack', ...o })),
        fc.array(fc.string(), { maxLength: 5 }).map((ids) => JSON.stringify({ type: 'ack', message_ids: ids })),
      )
      .filter((text) => Buffer.byteLength(text) < 64 * 1024);
    await fc.assert(
      fc.asyncProperty(frame, async (text) => {
        const count = replies.length;
        ws.send(text);
        const deadline = Date.now() + 5000;
        while (replies.length === count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
        const reply = replies[count];
        if (!reply) throw new Error('no reply');
        if (reply.type === 'ack_result') return; // a well-formed ack of nothing is fine
        if (reply.type !== 'error' || !reply.problem || reply.problem.status < 400 || reply.problem.status >= 500) {
          throw new Error(JSON.stringify(reply));
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(ws.readyState).toBe(WebSocket.OPEN);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('x'.repeat(70_000));
    expect(await closed).toBe(1009); // message too big
    // The only events the stream test may write are the peer's presence changes.
    expect(await recordCount(relay.ctx, relay.ctx.topics.mailbox)).toBe(mailboxBefore);
  }, 300_000);
});
