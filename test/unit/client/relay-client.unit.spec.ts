import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import {
  AccessTokens,
  EnvelopeError,
  HttpTransport,
  PeerIdentity,
  RelayClient,
  RelayClientError,
  sealMessage,
  signRegistration,
} from '../../../src/client/index.js';
import { SignatureVerifier } from '../../../src/crypto/signatures.js';

// A stand-in for the relay's auth contract over real HTTP and WebSocket, for what is hard to
// provoke in the real relay: which request carries which header, one token shared by concurrent
// callers, refresh ahead of expiry on a fake clock, a token the relay forgot. The end-to-end
// tests (test/e2e/client.e2e.spec.ts) run the same client against the real gate.

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

interface StandIn {
  readonly baseUrl: string;
  readonly seen: Seen[];
  /** Whether the mailbox routes and the stream require a bearer token. */
  requireTokens: boolean;
  tokenLifetimeSeconds: number;
  readonly tokens: Map<string, string>;
  readonly proofs: Record<string, unknown>[];
  peers: Map<string, Record<string, unknown>>;
  close(): Promise<void>;
}

const problem = (
  res: ServerResponse,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) => {
  res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
  res.end(JSON.stringify({ type: `urn:relay:error:${code}`, title: code, status, detail, code, ...extra }));
};

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : undefined;
}

async function startStandIn(): Promise<StandIn> {
  // The token-refresh test moves the client's clock 91 s ahead; the relay's default future window is 60 s.
  const verifier = new SignatureVerifier(Date.now, { maxFutureSeconds: 300 });
  const nonces = new Map<string, string>();
  const wss = new WebSocketServer({ noServer: true });
  const state: StandIn = {
    baseUrl: '',
    seen: [],
    requireTokens: false,
    tokenLifetimeSeconds: 900,
    tokens: new Map(),
    proofs: [],
    peers: new Map(),
    close: async () => undefined,
  };
  const bearerOf = (headers: IncomingHttpHeaders): string | undefined => {
    const match = /^Bearer (.+)$/.exec(headers.authorization ?? '');
    return match ? state.tokens.get(match[1] as string) : undefined;
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const body = await readBody(req);
      state.seen.push({ method: req.method ?? '', path: url.pathname, headers: req.headers, body });
      const fields = (body ?? {}) as Record<string, unknown>;
      const route = `${req.method} ${url.pathname}`;
      if (route === 'POST /api/v1/auth/challenge') {
        const nonce = randomBytes(16).toString('base64url');
        nonces.set(nonce, fields['address'] as string);
        return json(res, 200, { nonce, expires_at: new Date(Date.now() + 60_000).toISOString() });
      }
      if (route === 'POST /api/v1/auth/token') {
        try {
          const proof = verifier.verify(fields['proof']);
          verifier.checkFreshness(proof.payload);
          const nonce = proof.payload['nonce'] as string;
          if (nonces.get(nonce) !== proof.address || proof.payload['address'] !== proof.address)
            throw new Error('nonce or address');
          nonces.delete(nonce);
          state.proofs.push(proof.payload);
          const token = `tok-${state.tokens.size + 1}`;
          state.tokens.set(token, proof.address);
          return json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: state.tokenLifetimeSeconds });
        } catch (error) {
          return problem(res, 401, 'bad_signature', (error as Error).message);
        }
      }
      if (url.pathname === '/api/v1/messages' || url.pathname === '/api/v1/messages/ack') {
        const address = url.searchParams.get('address') ?? (fields['address'] as string);
        if (state.requireTokens && bearerOf(req.headers) !== address)
          return problem(res, 401, 'unauthorized', 'A bearer token for this address is required.');
        if (req.method === 'GET') return json(res, 200, { messages: [], next_cursor: null });
        return json(res, 200, { acknowledged: (fields['message_ids'] as unknown[]).length });
      }
      if (route === 'POST /api/v1/peer/register')
        return json(res, 202, { address: verifier.verify(fields['registration']).address, status: 'registered' });
      if (route === 'POST /api/v1/message/relay') {
        if (fields['message_type'] === 'overload-me')
          return problem(res, 503, 'overloaded', 'Busy.', { retry_after: 2 }, { 'retry-after': '2' });
        if (fields['message_type'] === 'html-me') {
          res.writeHead(502, { 'content-type': 'text/html' });
          return res.end('<html>bad gateway</html>');
        }
        return json(res, 202, { message_id: fields['message_id'], status: 'accepted', partition: 0, offset: '7' });
      }
      if (req.method === 'GET' && url.pathname.startsWith('/api/v1/peers/')) {
        const peer = state.peers.get(url.pathname.slice('/api/v1/peers/'.length));
        return peer ? json(res, 200, peer) : problem(res, 404, 'peer_not_found', 'No peer.');
      }
      return problem(res, 404, 'not_found', 'No such endpoint.');
    })().catch((error: unknown) => problem(res, 500, 'internal_error', String(error)));
  });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    state.seen.push({ method: 'UPGRADE', path: url.pathname, headers: req.headers, body: undefined });
    const address = url.searchParams.get('address');
    if (state.requireTokens && bearerOf(req.headers) !== address) {
      const body = JSON.stringify({
        type: 'urn:relay:error:unauthorized',
        title: 'unauthorized',
        status: 401,
        detail: 'Bearer token required.',
        code: 'unauthorized',
      });
      socket.end(
        `HTTP/1.1 401 unauthorized\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data) => {
        const frame = JSON.parse((data as Buffer).toString()) as { message_ids: string[] };
        ws.send(JSON.stringify({ type: 'ack_result', acknowledged: frame.message_ids.length }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('RelayClient against a stand-in for the security layer', () => {
  let standIn: StandIn;
  let identity: PeerIdentity;
  let other: PeerIdentity;

  beforeAll(async () => {
    [standIn, identity, other] = await Promise.all([
      startStandIn(),
      PeerIdentity.generate({ signing: 'ES256', encryption: 'ECDH-ES+A256KW' }),
      PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW' }),
    ]);
  });

  afterAll(async () => {
    await standIn.close();
  });

  beforeEach(() => {
    standIn.seen.length = 0;
    standIn.requireTokens = false;
    standIn.tokenLifetimeSeconds = 900;
  });

  it('sends X-API-Key on every request and on the stream upgrade, and no Authorization without tokens', async () => {
    const client = new RelayClient({ baseUrl: `${standIn.baseUrl}/`, identity, apiKey: 'k-123' });
    await client.register();
    await client.relay(
      await sealMessage(identity, { address: other.address, encryption_key: other.encryptionKey }, 'hi'),
    );
    await client.fetchMessages();
    await client.ack(['6f1c2a9e-4b1d-4c55-9a0e-2d7f3b8c1e42']);
    const stream = await client.openStream();
    await stream.close();
    expect(standIn.seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'POST /api/v1/peer/register',
      'POST /api/v1/message/relay',
      'GET /api/v1/messages',
      'POST /api/v1/messages/ack',
      'UPGRADE /api/v1/stream',
    ]);
    for (const seen of standIn.seen) {
      expect(seen.headers['x-api-key']).toBe('k-123');
      expect(seen.headers.authorization).toBeUndefined();
    }
  });

  it('with useTokens, proves the address once and sends the bearer token for mailbox reads, acks and the stream only', async () => {
    standIn.requireTokens = true;
    const client = new RelayClient({ baseUrl: standIn.baseUrl, identity, apiKey: 'k-123', useTokens: true });
    await client.register();
    await client.relay(
      await sealMessage(identity, { address: other.address, encryption_key: other.encryptionKey }, 'hi'),
    );
    expect(standIn.seen.some((s) => s.path.startsWith('/api/v1/auth/'))).toBe(false); // lazily: nothing needed one yet

    await Promise.all([client.fetchMessages(), client.fetchMessages()]); // concurrent callers share one token
    expect(await client.ack(['6f1c2a9e-4b1d-4c55-9a0e-2d7f3b8c1e42'])).toBe(1);
    const stream = await client.openStream();
    expect(await stream.ack(['6f1c2a9e-4b1d-4c55-9a0e-2d7f3b8c1e42'])).toBe(1);
    await stream.close();

    const paths = standIn.seen.map((s) => `${s.method} ${s.path}`);
    expect(paths.filter((p) => p === 'POST /api/v1/auth/challenge')).toHaveLength(1);
    expect(paths.filter((p) => p === 'POST /api/v1/auth/token')).toHaveLength(1);
    const proof = standIn.proofs.at(-1) as Record<string, unknown>;
    expect(proof).toEqual({ address: identity.address, nonce: expect.any(String), iat: expect.any(Number) });
    for (const seen of standIn.seen) {
      expect(seen.headers['x-api-key']).toBe('k-123');
      const wantsBearer =
        seen.path === '/api/v1/messages' || seen.path === '/api/v1/messages/ack' || seen.path === '/api/v1/stream';
      if (wantsBearer) expect(seen.headers.authorization).toMatch(/^Bearer tok-\d+$/);
      else expect(seen.headers.authorization).toBeUndefined();
    }
  });

  it('gets a new token when the relay refuses the held one', async () => {
    standIn.requireTokens = true;
    const client = new RelayClient({ baseUrl: standIn.baseUrl, identity, useTokens: true });
    await client.fetchMessages();
    standIn.tokens.clear(); // e.g. the relay restarted and forgot its tokens
    await client.fetchMessages();
    const mailboxReads = standIn.seen.filter((s) => s.path === '/api/v1/messages');
    expect(mailboxReads).toHaveLength(3); // ok, refused, ok with the new token
    expect(mailboxReads[1]?.headers.authorization).not.toBe(mailboxReads[2]?.headers.authorization);
  });

  it('refreshes a token before it expires', async () => {
    let now = Date.now();
    standIn.tokenLifetimeSeconds = 120;
    const tokens = new AccessTokens(new HttpTransport({ baseUrl: standIn.baseUrl }), identity, {
      refreshMarginSeconds: 30,
      now: () => now,
    });
    const first = await tokens.bearer();
    now += 60_000;
    expect(await tokens.bearer()).toBe(first);
    now += 31_000; // 91 s: within 30 s of the 120 s expiry
    const second = await tokens.bearer();
    expect(second).not.toBe(first);
    expect(standIn.seen.filter((s) => s.path === '/api/v1/auth/token')).toHaveLength(2);
  });

  it('refuses the stream upgrade with the problem as a RelayClientError', async () => {
    standIn.requireTokens = true;
    const client = new RelayClient({ baseUrl: standIn.baseUrl, identity });
    const error = await rejection(client.openStream());
    expect(error).toBeInstanceOf(RelayClientError);
    expect(error).toMatchObject({
      status: 401,
      code: 'unauthorized',
      detail: 'Bearer token required.',
      canRetry: false,
    });
  });

  it('surfaces problem documents, non-JSON errors and lost connections as RelayClientError', async () => {
    const client = new RelayClient({ baseUrl: standIn.baseUrl, identity });
    const sealed = await sealMessage(identity, { address: other.address, encryption_key: other.encryptionKey }, 'hi', {
      type: 'overload-me',
    });
    const overloaded = await rejection(client.relay(sealed));
    expect(overloaded).toBeInstanceOf(RelayClientError);
    expect(overloaded).toMatchObject({
      status: 503,
      code: 'overloaded',
      detail: 'Busy.',
      retryAfter: 2,
      canRetry: true,
    });
    expect((overloaded as RelayClientError).problem).toMatchObject({ retry_after: 2 });

    const html = await sealMessage(identity, { address: other.address, encryption_key: other.encryptionKey }, 'hi', {
      type: 'html-me',
    });
    expect(await rejection(client.relay(html))).toMatchObject({
      status: 502,
      code: 'unexpected_response',
      canRetry: true,
    });

    const notFound = await rejection(client.getPeer(other.address));
    expect(notFound).toMatchObject({ status: 404, code: 'peer_not_found', canRetry: false });

    const closed = new RelayClient({ baseUrl: 'http://127.0.0.1:9', identity });
    expect(await rejection(closed.fetchMessages())).toMatchObject({ status: 0, code: 'network_error', canRetry: true });
  });

  it("checks a peer record: the signing key must be the address's, and a signed registration must match", async () => {
    const client = new RelayClient({ baseUrl: standIn.baseUrl, identity });
    const record = {
      address: other.address,
      signing_key: other.signingKey,
      encryption_key: other.encryptionKey,
      connection_info: {},
      last_seen: null,
      online: false,
      registered_at: new Date().toISOString(),
    };
    standIn.peers.set(other.address, record);
    expect(await client.getPeer(other.address)).toMatchObject({
      address: other.address,
      encryption_key_attested: false,
    });

    standIn.peers.set(other.address, { ...record, registration: await signRegistration(other) });
    expect(await client.getPeer(other.address)).toMatchObject({ encryption_key_attested: true });

    const mallory = await PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW' });
    standIn.peers.set(other.address, {
      ...record,
      encryption_key: mallory.encryptionKey,
      registration: await signRegistration(other),
    });
    expect(await rejection(client.getPeer(other.address))).toMatchObject({ code: 'untrusted_peer_key' });

    standIn.peers.set(other.address, { ...record, signing_key: mallory.signingKey });
    const swapped = await rejection(client.getPeer(other.address));
    expect(swapped).toBeInstanceOf(EnvelopeError);
    expect(swapped).toMatchObject({ code: 'untrusted_peer_key' });
  });
});
