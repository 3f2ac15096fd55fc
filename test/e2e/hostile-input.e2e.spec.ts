import { createHash, randomUUID } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import WebSocket from 'ws';
import { deriveAddress } from '../../src/crypto/address.js';
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
    relay = await startRelay('hostile', {
      RELAY_AUTH: 'required',
      // Thousands of bad keys come from 127.0.0.1 as fast as one client can send them: with the
      // default budgets every later request would be 429, and the properties would test nothing else.
      RELAY_RATE_AUTH_FAILURES_PER_MINUTE: '1000000',
      RELAY_RATE_AUTH_FAILURES_BURST: '1000000',
      RELAY_RATE_KEY_PER_SECOND: '1000000',
      RELAY_RATE_KEY_BURST: '1000000',
      // The frame properties send hundreds of frames a second on one stream (limits.e2e tests the rate).
      RELAY_STREAM_FRAMES_PER_SECOND: '100000',
    });
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
    return (
      known && ERROR_CODES[problem.code as keyof typeof ERROR_CODES].status === status && problem.status === status
    );
  };

  // Values of every JSON type, with the shapes the API expects mixed in: near-misses find more.
  const anyValue = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.string({ maxLength: 80 }),
    fc.constantFrom(
      '',
      'x'.repeat(70_000),
      randomUUID(),
      peer.address,
      `${peer.address}x`,
      'a.b.c',
      '..',
      '🙂'.repeat(40),
      -1,
      1e308,
      null,
    ),
    fc.array(fc.uuid(), { maxLength: 5 }),
  );
  const fields = [
    'message_id',
    'from_address',
    'to_address',
    'message_type',
    'encrypted_content',
    'signature',
    'registration',
    'address',
    'message_ids',
    'messages',
    'proof',
  ];
  const bodyObject = fc.dictionary(fc.constantFrom(...fields, '__proto__', 'constructor', 'x'), anyValue, {
    maxKeys: 8,
  });
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
    contentType: fc.constantFrom(
      'application/json',
      'text/plain',
      'application/json; charset=latin1',
      'application/x-www-form-urlencoded',
      undefined,
    ),
    authorization: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 60 }), fc.constant('Bearer x.y.z')),
  });
  const query = fc.dictionary(
    fc.constantFrom('address', 'limit', 'after', 'cursor', 'x'),
    fc.oneof(fc.string({ maxLength: 60 }), fc.constant(peer.address), fc.integer().map(String)),
    { maxKeys: 4 },
  );

  const posts = [
    '/api/v1/peer/register',
    '/api/v1/message/relay',
    '/api/v1/message/relay/batch',
    '/api/v1/messages/ack',
    '/api/v1/auth/challenge',
    '/api/v1/auth/token',
  ];
  const gets = [
    '/api/v1/peers/discover',
    '/api/v1/messages',
    `/api/v1/peers/${peer.address}`,
    '/api/v1/peers/not-an-address',
    '/api/v1/nowhere',
  ];

  it.each(posts)(
    'POST %s answers every malformed body with a 4xx problem',
    async (path) => {
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
            if (!results.every((r) => r.status >= 400 && r.status < 500 && Object.hasOwn(ERROR_CODES, r.code)))
              throw new Error(text.slice(0, 300));
            return;
          }
          if (!isProblem(response.status, response.headers.get('content-type') ?? '', text)) {
            throw new Error(`${response.status} ${text.slice(0, 300)}`);
          }
        }),
        { seed: SEED, numRuns: RUNS },
      );
    },
    300_000,
  );

  it.each(gets)(
    'GET %s answers every malformed query with a 4xx problem',
    async (path) => {
      await fc.assert(
        fc.asyncProperty(query, headers, async (q, h) => {
          const requestHeaders: Record<string, string> = {};
          if (h.key !== undefined) requestHeaders['x-api-key'] = h.key === 'valid' ? apiKey : h.key;
          if (h.authorization !== undefined) requestHeaders['authorization'] = h.authorization;
          const response = await fetch(`${relay.baseUrl}${path}?${new URLSearchParams(q).toString()}`, {
            headers: requestHeaders,
          });
          const text = await response.text();
          // A valid key with a well-formed query may legitimately succeed (discover, a peer lookup).
          if (response.status === 200) return;
          if (!isProblem(response.status, response.headers.get('content-type') ?? '', text)) {
            throw new Error(`${response.status} ${text.slice(0, 300)}`);
          }
        }),
        { seed: SEED, numRuns: RUNS },
      );
    },
    300_000,
  );

  it('refuses malformed stream upgrades with a 4xx problem', async () => {
    await checkUpgrades();
  }, 300_000);

  describe('compressed bodies and cursors', () => {
    const compressors = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync } as const;
    type Encoding = keyof typeof compressors;
    // A body of about 20 KB that inflates to 20 MiB of JSON, once per encoding.
    const bombs = new Map<Encoding, Buffer>();
    const bomb = (encoding: Encoding): Buffer => {
      const text = JSON.stringify({ messages: [{ encrypted_content: 'A'.repeat(20 * 1024 * 1024) }] });
      const body = bombs.get(encoding) ?? compressors[encoding](text);
      bombs.set(encoding, body);
      return body;
    };

    it.each(posts)(
      'POST %s refuses every compressed body with 415, before reading it',
      async (path) => {
        const plain = fc.oneof(rawBody, fc.constant(JSON.stringify(peer.address)), fc.constant(undefined));
        const encodings = fc.constantFrom<Encoding>('gzip', 'deflate', 'br');
        await fc.assert(
          fc.asyncProperty(
            plain,
            encodings,
            fc.constantFrom('', 'identity, ', 'GZIP, '),
            async (text, encoding, prefix) => {
              const response = await fetch(`${relay.baseUrl}${path}`, {
                method: 'POST',
                headers: {
                  'x-api-key': apiKey,
                  'content-type': 'application/json',
                  'content-encoding': `${prefix}${encoding}`,
                },
                body: text === undefined ? bomb(encoding) : compressors[encoding](text),
              });
              const body = await response.text();
              if (
                response.status !== 415 ||
                !isProblem(response.status, response.headers.get('content-type') ?? '', body)
              ) {
                throw new Error(`${response.status} ${body.slice(0, 300)}`);
              }
              if ((JSON.parse(body) as { code: string }).code !== 'unsupported_media_type')
                throw new Error(body.slice(0, 300));
            },
          ),
          { seed: SEED, numRuns: Math.max(20, Math.floor(RUNS / 10)) },
        );
      },
      300_000,
    );

    // Cursors are base64url of "<partition>:<offset>" (mailbox) or "<offset>" (discover); these
    // hold numbers of every size and spelling, near-misses of both shapes included.
    const number = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String),
      fc.bigInt({ min: 2n ** 63n - 3n, max: 2n ** 63n + 3n }).map(String),
      fc.double().map(String),
      fc.constantFrom('1e300', '9999999999999999999', '-1', '0x10', ' 1', '', 'NaN', 'Infinity'),
    );
    const cursorText = fc.oneof(
      number,
      fc.tuple(number, number).map(([p, o]) => `${p}:${o}`),
      fc.constant('0:9999999999999999999'),
      fc.string({ maxLength: 40 }),
    );
    const cursor = cursorText.map((text) => Buffer.from(text).toString('base64url'));

    it('answers every mailbox and discover cursor with 200 or a 4xx problem, never a 500', async () => {
      const nonce = await fetch(`${relay.baseUrl}/api/v1/auth/challenge`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ address: peer.address }),
      }).then(async (r) => ((await r.json()) as { nonce: string }).nonce);
      const proof = await peer.sign({ address: peer.address, nonce, iat: Math.floor(Date.now() / 1000) });
      const { access_token: token } = await fetch(`${relay.baseUrl}/api/v1/auth/token`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ proof }),
      }).then((r) => r.json() as Promise<{ access_token: string }>);
      const ask = async (path: string, authorized: boolean) => {
        const response = await fetch(`${relay.baseUrl}${path}`, {
          headers: { 'x-api-key': apiKey, ...(authorized ? { authorization: `Bearer ${token}` } : {}) },
        });
        const body = await response.text();
        if (response.status !== 200 && !isProblem(response.status, response.headers.get('content-type') ?? '', body))
          throw new Error(`${path}: ${response.status} ${body.slice(0, 300)}`);
        return response.status;
      };
      // The two cursors of the finding, answered 400 (they were 500).
      const offenders = [
        `/api/v1/messages?address=${peer.address}&after=${Buffer.from('0:9999999999999999999').toString('base64url')}`,
        `/api/v1/peers/discover?address=${peer.address}&cursor=${Buffer.from('1e300').toString('base64url')}`,
      ];
      for (const path of offenders) expect(await ask(path, true)).toBe(400);
      await fc.assert(
        fc.asyncProperty(cursor, async (c) => {
          await ask(`/api/v1/messages?address=${peer.address}&after=${c}`, true);
          await ask(`/api/v1/peers/discover?address=${peer.address}&cursor=${c}`, false);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    }, 300_000);
  });

  it('is still up after the HTTP and upgrade runs, and no event was written', async () => {
    expect((await fetch(`${relay.baseUrl}/healthz`)).status).toBe(200);
    expect(await counts()).toBe(eventsBefore);
    mailboxBefore = await recordCount(relay.ctx, relay.ctx.topics.mailbox);
  });

  const checkUpgrades = async () => {
    await fc.assert(
      fc.asyncProperty(
        query,
        headers,
        fc.constantFrom('/api/v1/stream', '/api/v1/streams', '/'),
        async (q, h, path) => {
          const requestHeaders: Record<string, string> = {};
          if (h.key !== undefined) requestHeaders['x-api-key'] = h.key === 'valid' ? apiKey : h.key;
          if (h.authorization !== undefined) requestHeaders['authorization'] = h.authorization;
          const outcome = await new Promise<{ status: number; contentType: string; body: string }>((resolve) => {
            const ws = new WebSocket(`${relay.wsUrl}${path}?${new URLSearchParams(q).toString()}`, {
              headers: requestHeaders,
            });
            ws.once('unexpected-response', (_req, res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => (body += chunk.toString()));
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }),
              );
            });
            ws.once('open', () => {
              ws.close();
              resolve({ status: 101, contentType: '', body: '' });
            });
            ws.once('error', () => undefined);
          });
          if (!isProblem(outcome.status, outcome.contentType, outcome.body))
            throw new Error(`${outcome.status} ${outcome.body.slice(0, 300)}`);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  };

  it('answers malformed frames on an open stream with error frames and keeps the socket open', async () => {
    const challenge = await fetch(`${relay.baseUrl}/api/v1/auth/challenge`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ address: peer.address }),
    }).then((r) => r.json() as Promise<{ nonce: string }>);
    const proof = await peer.sign({
      address: peer.address,
      nonce: challenge.nonce,
      iat: Math.floor(Date.now() / 1000),
    });
    const { access_token: token } = await fetch(`${relay.baseUrl}/api/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ proof }),
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const ws = new WebSocket(`${relay.wsUrl}/api/v1/stream?address=${peer.address}`, {
      headers: { 'x-api-key': apiKey, authorization: `Bearer ${token}` },
    });
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
        while (replies.length === count && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 2));
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

  describe('signatures that verify but must not count', () => {
    const SIGNED_RUNS = Math.max(30, Math.floor(RUNS / 3));
    type Target = 'register' | 'message' | 'token';
    const targets = fc.constantFrom<Target>('register', 'message', 'token');
    const now = () => Math.floor(Date.now() / 1000);

    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${relay.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      if (!isProblem(response.status, response.headers.get('content-type') ?? '', text))
        throw new Error(`${response.status} ${text.slice(0, 300)}`);
      return JSON.parse(text) as { status: number; code: string; detail: string };
    };
    const nonceFor = async (address: string): Promise<string> => {
      const response = await fetch(`${relay.baseUrl}/api/v1/auth/challenge`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ address }),
      });
      return ((await response.json()) as { nonce: string }).nonce;
    };
    /** Sends, to `target`, what `sign` signs for `address`; answers the problem the relay returns. */
    const attempt = async (
      target: Target,
      address: string,
      iat: number,
      sign: (payload: object) => Promise<string>,
    ) => {
      switch (target) {
        case 'register':
          return post('/api/v1/peer/register', {
            registration: await sign({ address, encryption_key: peer.encryptionKey, iat }),
          });
        case 'token':
          return post('/api/v1/auth/token', { proof: await sign({ address, nonce: await nonceFor(address), iat }) });
        case 'message': {
          const messageId = randomUUID();
          const content = `ciphertext-${messageId}`;
          const sha256 = createHash('sha256').update(content, 'utf8').digest('base64url');
          const signature = await sign({
            message_id: messageId,
            from: address,
            to: peer.address,
            type: 'text',
            sha256,
            iat,
          });
          return post('/api/v1/message/relay', {
            message_id: messageId,
            from_address: address,
            to_address: peer.address,
            message_type: 'text',
            encrypted_content: content,
            signature,
          });
        }
      }
    };

    it('refuses registrations, messages and token proofs signed more than 300 s ago or more than 60 s ahead', async () => {
      const before = await counts();
      const offsets = fc.oneof(fc.integer({ min: -400_000, max: -302 }), fc.integer({ min: 62, max: 400_000 }));
      await fc.assert(
        fc.asyncProperty(offsets, targets, async (offset, target) => {
          const signer = TestPeer.create(offset % 2 === 0 ? 'EdDSA' : 'ES256');
          const problem = await attempt(target, signer.address, now() + offset, (payload) => signer.sign(payload));
          if (problem.code !== 'stale_signature' || problem.status !== 401) throw new Error(JSON.stringify(problem));
        }),
        { seed: SEED, numRuns: SIGNED_RUNS },
      );
      expect(await counts()).toBe(before);
    }, 300_000);

    it('accepts a registration signed up to 300 s ago or up to 60 s ahead', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: -298, max: 58 }), async (offset) => {
          const signer = TestPeer.create();
          const response = await fetch(`${relay.baseUrl}/api/v1/peer/register`, {
            method: 'POST',
            headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
            body: JSON.stringify(await signer.registration({ iat: now() + offset })),
          });
          if (response.status !== 202) throw new Error(`${response.status} ${await response.text()}`);
        }),
        { seed: SEED, numRuns: 20 },
      );
    }, 120_000);

    // The eight points of small order, some with the sign bit flipped, and spellings of points with y >= p.
    const P = 2n ** 255n - 19n;
    const encode = (y: bigint, signBit = false) => {
      const bytes = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) bytes[i] = Number((y >> BigInt(8 * i)) & 0xffn);
      if (signBit) bytes[31] = (bytes[31] ?? 0) | 0x80;
      return bytes;
    };
    const order8 = (hex: string, signBit = false) => {
      const bytes = Buffer.from(hex, 'hex');
      if (signBit) bytes[31] = (bytes[31] ?? 0) | 0x80;
      return bytes;
    };
    const weakKeys = [
      encode(1n),
      encode(P - 1n),
      encode(0n),
      encode(0n, true),
      order8('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
      order8('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', true),
      order8('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'),
      order8('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', true),
      encode(P),
      encode(P + 1n),
      encode(2n ** 255n - 1n),
      encode(1n, true),
    ].map((x) => x.toString('base64url'));
    const forgedSignatures = fc.oneof(
      fc.constant(Buffer.alloc(64)),
      fc.constant(Buffer.concat([Buffer.from([1]), Buffer.alloc(63)])),
      fc.uint8Array({ minLength: 64, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    );

    it('refuses small-order and non-canonical Ed25519 keys, whatever the signature, at every signed endpoint', async () => {
      const before = await counts();
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...weakKeys), forgedSignatures, targets, async (x, signature, target) => {
          const jwk = { kty: 'OKP', crv: 'Ed25519', x };
          const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', jwk })).toString('base64url');
          const forge = async (payload: object) =>
            `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature.toString('base64url')}`;
          const problem = await attempt(target, deriveAddress(jwk), now(), forge);
          if (problem.code !== 'bad_signature' || problem.status !== 401) throw new Error(JSON.stringify(problem));
        }),
        { seed: SEED, numRuns: SIGNED_RUNS },
      );
      expect(await counts()).toBe(before);
    }, 300_000);
  });

  it('answers replays of a signed message with the original answer, writing nothing and spending no rate budget', async () => {
    // A sender at the default budget (burst 1,000): one message, then its replays by anyone who
    // holds it, in singles and in batches of repeated copies.
    const sender = TestPeer.create();
    const message = await sender.message(peer.address);
    const headers = { 'x-api-key': apiKey, 'content-type': 'application/json' };
    const original = await fetch(`${relay.baseUrl}/api/v1/message/relay`, {
      method: 'POST',
      headers,
      body: JSON.stringify(message),
    });
    expect(original.status).toBe(202);
    const answer = (await original.json()) as Record<string, unknown>;
    const before = await counts();
    let replayed = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 500 }), fc.boolean(), async (copies, batch) => {
        const body = batch ? { messages: Array.from({ length: copies }, () => message) } : message;
        const response = await fetch(`${relay.baseUrl}/api/v1/message/relay${batch ? '/batch' : ''}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
        });
        const results = batch ? ((await response.json()) as { results: unknown[] }).results : [await response.json()];
        replayed += results.length;
        for (const result of results) expect(result).toEqual(answer);
      }),
      { seed: SEED, numRuns: Math.max(20, Math.floor(RUNS / 10)) },
    );
    expect(replayed).toBeGreaterThan(1000); // more than the sender's whole burst
    expect(await counts()).toBe(before);
    const fresh = await fetch(`${relay.baseUrl}/api/v1/message/relay`, {
      method: 'POST',
      headers,
      body: JSON.stringify(await sender.message(peer.address)),
    });
    expect(fresh.status).toBe(202);
  }, 300_000);
});
