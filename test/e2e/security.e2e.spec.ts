import { connect as tlsConnect } from 'node:tls';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import WebSocket from 'ws';
import { makeDevCerts } from '../../src/cli/dev-certs.js';
import { ApiKeyStore } from '../../src/ingress/api-keys.js';
import { TokenService } from '../../src/ingress/tokens.js';
import { deriveAddress } from '../../src/crypto/address.js';
import { SignatureVerifier } from '../../src/crypto/signatures.js';
import type { Pool } from '../../src/postgres/pool.js';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { callTls, startRelay, type RunningRelay } from '../helpers/relay.js';
import { recordCount } from '../helpers/topic-reader.js';

// The security list of the specification, against a relay with TLS and auth on.
describe('security: TLS 1.3, API keys, address-bound tokens, rate limits', () => {
  let relay: RunningRelay;
  let ca: string;
  let apiKey: string;
  const alice = TestPeer.create('ES256');
  const bob = TestPeer.create('EdDSA');

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    callTls(relay.baseUrl, ca, method, path, body, { 'x-api-key': apiKey, ...headers });

  const tokenFor = async (peer: TestPeer): Promise<string> => {
    const challenge = await api('POST', '/api/v1/auth/challenge', { address: peer.address });
    expect(challenge.status).toBe(200);
    const proof = await peer.sign({
      address: peer.address,
      nonce: challenge.body['nonce'],
      iat: Math.floor(Date.now() / 1000),
    });
    const token = await api('POST', '/api/v1/auth/token', { proof });
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    return token.body['access_token'] as string;
  };

  beforeAll(async () => {
    const certs = await makeDevCerts(await mkdtemp(join(tmpdir(), 'relay-certs-')));
    ca = await readFile(certs.ca, 'utf8');
    // A 6 s presence TTL heartbeats (and re-checks open streams) every 2 s.
    relay = await startRelay('security', {
      RELAY_AUTH: 'required',
      RELAY_TLS_CERT: certs.cert,
      RELAY_TLS_KEY: certs.key,
      RELAY_PRESENCE_TTL_SECONDS: '6',
    });
    apiKey = (await new ApiKeyStore(relay.ctx.pool).create('test')).key;
    for (const peer of [alice, bob])
      expect((await api('POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
    // A 202 means the event is durable; the peer directory shows it once it is projected.
    await eventually(
      async () => ((await api('GET', `/api/v1/peers/${alice.address}`)).status === 200 ? true : undefined),
      15_000,
      'the registration projected',
    );
  }, 90_000);

  afterAll(async () => {
    await relay?.stop();
  });

  const port = () => Number(new URL(relay.baseUrl).port);

  describe('TLS', () => {
    const handshake = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: port(), ca, servername: 'localhost', maxVersion }, () => {
          resolve(socket.getProtocol() ?? '');
          socket.end();
        });
        socket.once('error', reject);
      });

    it('accepts TLS 1.3 and refuses a TLS 1.2 client over HTTPS', async () => {
      expect(await handshake('TLSv1.3')).toBe('TLSv1.3');
      await expect(handshake('TLSv1.2')).rejects.toThrow(/protocol version|alert/i);
      expect((await api('GET', '/healthz')).status).toBe(200);
    });

    it('accepts TLS 1.3 and refuses TLS 1.2 over WSS', async () => {
      const token = await tokenFor(bob);
      const open = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${relay.wsUrl}/api/v1/stream?address=${bob.address}`, {
            ca,
            maxVersion,
            headers: { 'x-api-key': apiKey, authorization: `Bearer ${token}` },
          });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        });
      const ws = await open('TLSv1.3');
      expect(ws.readyState).toBe(WebSocket.OPEN);
      ws.close();
      await expect(open('TLSv1.2')).rejects.toThrow(/protocol version|alert/i);
    });
  });

  describe('API keys', () => {
    it('refuses a call without a key, with an unknown key, and with a revoked key', async () => {
      const noKey = await callTls(relay.baseUrl, ca, 'GET', `/api/v1/peers/${alice.address}`);
      expect(noKey.status).toBe(401);
      expect(noKey.body).toMatchObject({ code: 'missing_api_key' });
      const unknown = await api('GET', `/api/v1/peers/${alice.address}`, undefined, {
        'x-api-key': 'rk_AAAAAAAAAAAA_' + 'A'.repeat(43),
      });
      expect(unknown.body).toMatchObject({ code: 'invalid_api_key', status: 401 });

      const store = new ApiKeyStore(relay.ctx.pool);
      const doomed = await store.create('doomed');
      expect((await api('GET', `/api/v1/peers/${alice.address}`, undefined, { 'x-api-key': doomed.key })).status).toBe(
        200,
      );
      expect(await store.revoke(doomed.info.id)).toBe(true);
      const refused = await eventually(
        async () => {
          const answer = await api('GET', `/api/v1/peers/${alice.address}`, undefined, { 'x-api-key': doomed.key });
          return answer.status === 401 ? answer : undefined;
        },
        15_000,
        'the revoked key refused',
      );
      expect(refused.body).toMatchObject({ code: 'invalid_api_key' });
      const row = (
        await relay.ctx.pool.query<{ secret_sha256: Buffer; revoked_at: Date | null }>(
          'SELECT secret_sha256, revoked_at FROM api_keys WHERE id = $1',
          [doomed.info.id],
        )
      ).rows[0]!;
      expect(row.revoked_at).toBeInstanceOf(Date);
      // The key is rk_<id>_<secret>, and a base64url secret may itself hold "_".
      const secret = doomed.key.slice(`rk_${doomed.info.id}_`.length);
      expect(secret).toHaveLength(43);
      expect(Buffer.from(row.secret_sha256).toString('utf8')).not.toContain(secret);
    }, 30_000);

    it('remembers unknown key ids in a bounded cache of their own, so a flood of them neither grows memory nor evicts real keys', async () => {
      let queries = 0;
      const pool = relay.ctx.pool;
      const counting = {
        query: (...args: Parameters<Pool['query']>) => (queries++, pool.query(...args)),
      } as unknown as Pool;
      const store = new ApiKeyStore(counting, { unknownIds: 50 });
      const real = await new ApiKeyStore(pool).create('cached');
      await store.verify(real.key);
      const unknownKey = (i: number) => `rk_${`u${String(i).padStart(11, '0')}`}_${'A'.repeat(43)}`;
      queries = 0;
      for (let i = 0; i < 120; i++)
        await expect(store.verify(unknownKey(i))).rejects.toMatchObject({ code: 'invalid_api_key' });
      expect(queries).toBe(120);
      expect(store.cacheUsage()).toEqual({ known: 1, unknown: 50 });
      // The newest unknown ids are remembered (no query), and the real key was not pushed out.
      queries = 0;
      await expect(store.verify(unknownKey(119))).rejects.toMatchObject({ code: 'invalid_api_key' });
      expect((await store.verify(real.key)).id).toBe(real.info.id);
      expect(queries).toBe(0);
    });

    it("refuses a call outside the key's scopes", async () => {
      const readOnly = await new ApiKeyStore(relay.ctx.pool).create('reader', ['peers:read']);
      const before = await recordCount(relay.ctx, relay.ctx.topics.mailbox);
      const answer = await api('POST', '/api/v1/message/relay', await alice.message(bob.address), {
        'x-api-key': readOnly.key,
      });
      expect(answer.status).toBe(403);
      expect(answer.body).toMatchObject({ code: 'insufficient_scope' });
      expect(await recordCount(relay.ctx, relay.ctx.topics.mailbox)).toBe(before);
    });
  });

  describe('address-bound tokens', () => {
    it('lets only a token for that address read and ack a mailbox', async () => {
      const message = await alice.message(bob.address);
      expect((await api('POST', '/api/v1/message/relay', message)).status).toBe(202);
      await eventually(
        async () =>
          (
            await relay.ctx.pool.query<{ '?column?': number }>('SELECT 1 FROM messages WHERE id = $1', [
              message['message_id'],
            ])
          ).rows[0],
        15_000,
        'projected',
      );
      const before = await recordCount(relay.ctx, relay.ctx.topics.mailbox);

      const none = await api('GET', `/api/v1/messages?address=${bob.address}`);
      expect(none.status).toBe(401);
      expect(none.body).toMatchObject({ code: 'missing_token' });
      const aliceToken = await tokenFor(alice);
      const other = await api(
        'POST',
        '/api/v1/messages/ack',
        { address: bob.address, message_ids: [message['message_id']] },
        { authorization: `Bearer ${aliceToken}` },
      );
      expect(other.status).toBe(403);
      expect(other.body).toMatchObject({ code: 'address_mismatch' });
      expect(await recordCount(relay.ctx, relay.ctx.topics.mailbox)).toBe(before);

      const bobToken = await tokenFor(bob);
      const read = await api('GET', `/api/v1/messages?address=${bob.address}`, undefined, {
        authorization: `Bearer ${bobToken}`,
      });
      expect(read.status).toBe(200);
      expect((read.body['messages'] as { message_id: string }[]).map((m) => m.message_id)).toContain(
        message['message_id'],
      );
    });

    it('refuses a stream for another address, and a reused nonce', async () => {
      const aliceToken = await tokenFor(alice);
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${relay.wsUrl}/api/v1/stream?address=${bob.address}`, {
          ca,
          headers: { 'x-api-key': apiKey, authorization: `Bearer ${aliceToken}` },
        });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
        ws.once('error', () => undefined);
      });
      expect(refused).toBe(403);

      const challenge = await api('POST', '/api/v1/auth/challenge', { address: alice.address });
      const proof = await alice.sign({
        address: alice.address,
        nonce: challenge.body['nonce'],
        iat: Math.floor(Date.now() / 1000),
      });
      expect((await api('POST', '/api/v1/auth/token', { proof })).status).toBe(200);
      const again = await api('POST', '/api/v1/auth/token', { proof });
      expect(again.status).toBe(401);
      expect(again.body).toMatchObject({ code: 'invalid_nonce' });
      // A nonce issued for one address cannot be spent by another.
      const forBob = await api('POST', '/api/v1/auth/challenge', { address: bob.address });
      const stolen = await alice.sign({
        address: alice.address,
        nonce: forBob.body['nonce'],
        iat: Math.floor(Date.now() / 1000),
      });
      expect((await api('POST', '/api/v1/auth/token', { proof: stolen })).body).toMatchObject({
        code: 'invalid_nonce',
      });
    });

    it('refuses an expired token', async () => {
      await tokenFor(bob); // makes sure a signing key exists
      const [key] = (
        await relay.ctx.pool.query<{ kid: string; private_jwk: JWK }>(
          'SELECT kid, private_jwk FROM token_signing_keys LIMIT 1',
        )
      ).rows;
      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: key?.kid ?? '' })
        .setIssuer('relay')
        .setSubject(bob.address)
        .setIssuedAt(Math.floor(Date.now() / 1000) - 1000)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
        .sign(await importJWK(key?.private_jwk as JWK, 'EdDSA'));
      const answer = await api('GET', `/api/v1/messages?address=${bob.address}`, undefined, {
        authorization: `Bearer ${expired}`,
      });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ code: 'invalid_token' });
    });

    it('re-reads the signing keys for an unknown kid at most once a second, and still finds a rotated key', async () => {
      await tokenFor(bob); // makes sure a signing key exists
      let queries = 0;
      const pool = relay.ctx.pool;
      const counting = {
        query: (...args: Parameters<Pool['query']>) => (queries++, pool.query(...args)),
      } as unknown as Pool;
      const verifying = new TokenService({
        pool: counting,
        redis: relay.ctx.redis,
        redisPrefix: relay.ctx.config.redis.keyPrefix,
        verifier: new SignatureVerifier(),
        ttlSeconds: 900,
      });
      const now = Math.floor(Date.now() / 1000);
      const tokenWith = async (kid: string, key: Parameters<SignJWT['sign']>[0]) =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'EdDSA', kid })
          .setIssuer('relay')
          .setSubject(bob.address)
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(key);
      const [current] = (
        await pool.query<{ kid: string; private_jwk: JWK }>(
          'SELECT kid, private_jwk FROM token_signing_keys ORDER BY created_at DESC LIMIT 1',
        )
      ).rows;
      expect(
        await verifying.verify(await tokenWith(current!.kid, await importJWK(current!.private_jwk, 'EdDSA'))),
      ).toBe(bob.address);
      expect(queries).toBe(1);

      // Another node rotates: the first token with the new kid makes this one re-read the keys.
      const other = new TokenService({
        pool,
        redis: relay.ctx.redis,
        redisPrefix: relay.ctx.config.redis.keyPrefix,
        verifier: new SignatureVerifier(),
        ttlSeconds: 900,
      });
      const newKid = await other.rotate();
      const [rotated] = (
        await pool.query<{ private_jwk: JWK }>('SELECT private_jwk FROM token_signing_keys WHERE kid = $1', [newKid])
      ).rows;
      expect(await verifying.verify(await tokenWith(newKid, await importJWK(rotated!.private_jwk, 'EdDSA')))).toBe(
        bob.address,
      );
      expect(queries).toBe(2);

      // Made-up kids: each is refused, and together they cause at most one read per second.
      const stranger = generateKeyPairSync('ed25519').privateKey;
      const started = Date.now();
      for (let i = 0; i < 50; i++) {
        await expect(verifying.verify(await tokenWith(`made-up-${i}`, stranger))).rejects.toMatchObject({
          code: 'invalid_token',
        });
      }
      const seconds = Math.ceil((Date.now() - started) / 1000);
      expect(queries - 2).toBeLessThanOrEqual(seconds + 1);
    });

    it('keeps earlier tokens valid across a key rotation and publishes both keys', async () => {
      const before = await tokenFor(bob);
      const tokens = new TokenService({
        pool: relay.ctx.pool,
        redis: relay.ctx.redis,
        redisPrefix: relay.ctx.config.redis.keyPrefix,
        verifier: new SignatureVerifier(),
        ttlSeconds: 900,
      });
      const newKid = await tokens.rotate();
      // The JWKS is re-read at most every 5 s.
      const kids = await eventually(
        async () => {
          const jwks = await api('GET', '/.well-known/jwks.json');
          const listed = (jwks.body['keys'] as { kid: string }[]).map((k) => k.kid);
          return listed.includes(newKid) ? listed : undefined;
        },
        15_000,
        'the new key published',
      );
      expect(kids.length).toBeGreaterThanOrEqual(2);
      const read = await api('GET', `/api/v1/messages?address=${bob.address}`, undefined, {
        authorization: `Bearer ${before}`,
      });
      expect(read.status).toBe(200);
    });
  });

  describe('signatures', () => {
    const smallOrderJwk = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString('base64url'),
    };
    const forgedJws = (payload: object) =>
      `${Buffer.from(JSON.stringify({ alg: 'EdDSA', jwk: smallOrderJwk })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${Buffer.concat([Buffer.from([1]), Buffer.alloc(63)]).toString('base64url')}`;

    it('issues no token for a small-order Ed25519 key and a forged signature', async () => {
      const address = deriveAddress(smallOrderJwk);
      const challenge = await api('POST', '/api/v1/auth/challenge', { address });
      expect(challenge.status).toBe(200);
      const answer = await api('POST', '/api/v1/auth/token', {
        proof: forgedJws({ address, nonce: challenge.body['nonce'], iat: Math.floor(Date.now() / 1000) }),
      });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ code: 'bad_signature' });
      expect(answer.body['detail']).toMatch(/small order/);
      expect(answer.body).not.toHaveProperty('access_token');
    });

    it('accepts an iat a little ahead of the clock, and refuses one 90 s ahead (default 60 s)', async () => {
      const peer = TestPeer.create();
      const now = Math.floor(Date.now() / 1000);
      const ahead = await api('POST', '/api/v1/peer/register', await peer.registration({ iat: now + 90 }));
      expect(ahead.status).toBe(401);
      expect(ahead.body).toMatchObject({ code: 'stale_signature' });
      expect(ahead.body['detail']).toMatch(/ahead of the server's clock; at most 60 s/);
      expect((await api('POST', '/api/v1/peer/register', await peer.registration({ iat: now + 30 }))).status).toBe(202);
      // Another peer: this one's registration signed 30 s ahead supersedes anything it signed earlier.
      const other = TestPeer.create();
      expect((await api('POST', '/api/v1/peer/register', await other.registration({ iat: now - 240 }))).status).toBe(
        202,
      );
    });

    it('refuses a protected header over 1024 characters before decoding it', async () => {
      const peer = TestPeer.create();
      const payload = { address: peer.address, encryption_key: peer.encryptionKey, iat: Math.floor(Date.now() / 1000) };
      const { CompactSign } = await import('jose');
      const registration = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: peer.alg, jwk: { ...peer.jwk }, pad: 'x'.repeat(4000) })
        .sign(peer.privateKey);
      const answer = await api('POST', '/api/v1/peer/register', { registration });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ code: 'bad_signature' });
      expect(answer.body['detail']).toMatch(/at most 1024 are accepted/);
    });
  });

  describe('error details', () => {
    it('do not quote the body back when it is not JSON', async () => {
      const answer = await api('POST', '/api/v1/peer/register', '{"registration": hunter2-secret}');
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ code: 'malformed_json' });
      expect(answer.body['detail']).toMatch(/^The body is not valid JSON/);
      expect(JSON.stringify(answer.body)).not.toContain('hunter2');
    });

    it("say what is wrong with a key in the relay's words, not the parser's", async () => {
      const peer = TestPeer.create('ES256');
      const y = Buffer.from(peer.jwk.y as string, 'base64url');
      y[31] = (y[31] ?? 0) ^ 0x01;
      const answer = await api(
        'POST',
        '/api/v1/peer/register',
        await (async () => {
          const { registration } = await peer.registration();
          const [, p] = registration.split('.');
          const header = Buffer.from(
            JSON.stringify({ alg: 'ES256', jwk: { ...peer.jwk, y: y.toString('base64url') } }),
          ).toString('base64url');
          return { registration: `${header}.${p}.${'A'.repeat(86)}` };
        })(),
      );
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ code: 'bad_signature', detail: 'The "jwk" is not a point on P-256.' });
    });
  });

  describe('open streams', () => {
    const closeOf = (ws: WebSocket) =>
      new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
    const openStream = async (peer: TestPeer, key: string, token: string): Promise<WebSocket> => {
      const ws = new WebSocket(`${relay.wsUrl}/api/v1/stream?address=${peer.address}`, {
        ca,
        headers: { 'x-api-key': key, authorization: `Bearer ${token}` },
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      });
      return ws;
    };

    it('closes a stream whose API key is revoked, with 4401 invalid_api_key', async () => {
      const store = new ApiKeyStore(relay.ctx.pool);
      const doomed = await store.create('stream-doomed', ['messages:read']);
      const ws = await openStream(bob, doomed.key, await tokenFor(bob));
      const closed = closeOf(ws);
      const stillOpen = await Promise.race([
        closed.then(() => false),
        new Promise((resolve) => setTimeout(() => resolve(true), 3000)),
      ]);
      expect(stillOpen).toBe(true); // heartbeats re-check a valid key without closing anything
      expect(await store.revoke(doomed.info.id)).toBe(true);
      expect(await closed).toEqual({ code: 4401, reason: 'invalid_api_key' });
    }, 30_000);

    it('closes a stream when its token expires, with 4401 invalid_token', async () => {
      await tokenFor(bob); // makes sure a signing key exists
      const [key] = (
        await relay.ctx.pool.query<{ kid: string; private_jwk: JWK }>(
          'SELECT kid, private_jwk FROM token_signing_keys ORDER BY created_at DESC LIMIT 1',
        )
      ).rows;
      const now = Math.floor(Date.now() / 1000);
      const shortLived = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: key?.kid ?? '' })
        .setIssuer('relay')
        .setSubject(bob.address)
        .setIssuedAt(now)
        .setExpirationTime(now + 5)
        .sign(await importJWK(key?.private_jwk as JWK, 'EdDSA'));
      const ws = await openStream(bob, apiKey, shortLived);
      expect(await closeOf(ws)).toEqual({ code: 4401, reason: 'invalid_token' });
      expect(Date.now() / 1000).toBeGreaterThanOrEqual(now + 5); // not before the token ran out
    }, 30_000);
  });

  describe('rate limits', () => {
    let limited: RunningRelay;
    let key: string;
    beforeAll(async () => {
      limited = await startRelay('ratelimit', {
        RELAY_AUTH: 'required',
        RELAY_RATE_KEY_PER_SECOND: '2',
        RELAY_RATE_KEY_BURST: '4',
        RELAY_RATE_SENDER_PER_SECOND: '5',
        RELAY_RATE_SENDER_BURST: '10',
        RELAY_RATE_AUTH_FAILURES_PER_MINUTE: '6',
        RELAY_RATE_AUTH_FAILURES_BURST: '5',
        // The test client plays a proxy: requests that carry X-Forwarded-For count for the address in it.
        RELAY_TRUSTED_PROXIES: '127.0.0.1',
      });
      key = (await new ApiKeyStore(limited.ctx.pool).create('limited')).key;
    }, 90_000);
    afterAll(async () => {
      await limited?.stop();
    });

    it('answers a burst over the limit with 429 and Retry-After, then lets requests through again', async () => {
      const get = () =>
        fetch(`${limited.baseUrl}/api/v1/peers/discover?address=${alice.address}`, { headers: { 'x-api-key': key } });
      const answers = await Promise.all(Array.from({ length: 10 }, get));
      const refused = answers.filter((a) => a.status === 429);
      expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
      expect(refused.length).toBeGreaterThanOrEqual(5);
      const first = refused[0] as Response;
      expect(first.headers.get('content-type')).toContain('application/problem+json');
      expect(((await first.json()) as { code: string }).code).toBe('rate_limited');
      const retryAfter = Number(first.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(first.headers.get('ratelimit-limit')).toBe('4');
      expect(first.headers.get('ratelimit-remaining')).toBe('0');
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 200));
      expect((await get()).status).toBe(200);
    }, 30_000);

    it('limits each sender address, message by message, without touching other senders', async () => {
      const noisy = TestPeer.create();
      const quiet = TestPeer.create();
      const messages = [
        ...(await Promise.all(Array.from({ length: 30 }, () => noisy.message(bob.address, 'x')))),
        await quiet.message(bob.address, 'y'),
      ];
      const before = await recordCount(limited.ctx, limited.ctx.topics.mailbox);
      const answer = await fetch(`${limited.baseUrl}/api/v1/message/relay/batch`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
      });
      const { results } = (await answer.json()) as {
        results: { status: string | number; code?: string; retry_after?: number }[];
      };
      const noisyResults = results.slice(0, 30);
      const accepted = noisyResults.filter((r) => r.status === 'accepted').length;
      // A burst of 10 at 5/s: ten pass at once, the rest wait their turn.
      expect(accepted).toBeGreaterThanOrEqual(10);
      expect(accepted).toBeLessThanOrEqual(11);
      for (const refused of noisyResults.filter((r) => r.status !== 'accepted')) {
        expect(refused).toMatchObject({ code: 'rate_limited', status: 429 });
        expect(refused.retry_after).toBeGreaterThanOrEqual(1);
      }
      expect(results[30]).toMatchObject({ status: 'accepted' });
      expect(await recordCount(limited.ctx, limited.ctx.topics.mailbox)).toBe(before + accepted + 1);
    }, 60_000);

    // Last in this block: it spends this address's failure budget, which refills one per 10 s.
    it('answers a client address 429 once it has used up its failed authentications, valid key or not', async () => {
      const get = (apiKey: string) =>
        fetch(`${limited.baseUrl}/api/v1/peers/discover?address=${alice.address}`, {
          headers: { 'x-api-key': apiKey },
        });
      const unknown = (i: number) => `rk_${`f${String(i).padStart(11, '0')}`}_${'A'.repeat(43)}`;
      for (let i = 0; i < 5; i++) expect((await get(unknown(i))).status).toBe(401);
      const refused = await get(unknown(5));
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const problem = (await refused.json()) as { code: string; detail: string; retry_after: number };
      expect(problem).toMatchObject({ code: 'rate_limited' });
      expect(problem.detail).toMatch(/failed authentications/);
      // Until the budget refills, the address's calls are refused before their key is looked at.
      expect((await get(key)).status).toBe(429);
      const upgrade = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${limited.wsUrl}/api/v1/stream?address=${alice.address}`, {
          headers: { 'x-api-key': unknown(6) },
        });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
        ws.once('error', () => undefined);
      });
      expect(upgrade).toBe(429);
    });

    it('behind a trusted proxy, gives each forwarded client address a budget of its own', async () => {
      const get = (forwardedFor: string, i: number) =>
        fetch(`${limited.baseUrl}/api/v1/peers/discover?address=${alice.address}`, {
          headers: {
            'x-api-key': `rk_${`p${String(i).padStart(11, '0')}`}_${'A'.repeat(43)}`,
            'x-forwarded-for': forwardedFor,
          },
        });
      // 127.0.0.1 itself has spent its budget above; the clients behind it have not. What a client
      // writes before the proxy's own entry does not choose its budget.
      for (let i = 0; i < 5; i++) expect((await get(`203.0.113.${i}, 198.51.100.20`, i)).status).toBe(401);
      const refused = await get('203.0.113.99, 198.51.100.20', 5);
      expect(refused.status).toBe(429);
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/from 198\.51\.100\.20;/);
      expect((await get('198.51.100.21', 6)).status).toBe(401);
    });

    it('has per-key defaults a real application needs, not 20,000/s', async () => {
      const answer = await api('GET', `/api/v1/peers/${alice.address}`);
      expect(answer.status).toBe(200);
      expect(Number(answer.headers.get('ratelimit-limit'))).toBe(1000);
    });
  });
});
