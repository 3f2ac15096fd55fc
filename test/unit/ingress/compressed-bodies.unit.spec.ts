import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import express from 'express';
import { problemMiddleware } from '../../../src/ingress/problem.js';
import { apiRoutes, type ApiDeps } from '../../../src/ingress/api-routes.js';
import { openMailboxes } from '../../../src/ingress/auth-guards.js';
import { createLogger } from '../../../src/observability/logger.js';

// The v1 routes with stand-ins behind them that record whether a body reached them: a compressed
// body must be refused with 415 before it is inflated or parsed, on every endpoint that takes one.
describe('compressed request bodies', () => {
  let server: Server;
  let baseUrl: string;
  const reached: string[] = [];

  beforeAll(async () => {
    const record = (what: string) => async () => {
      reached.push(what);
      return Promise.resolve({});
    };
    const deps = {
      relay: { relay: async () => (reached.push('relay'), [{}]), acknowledge: record('ack') },
      peers: { register: record('register') },
      mailbox: {},
      tokens: { challenge: record('challenge'), issue: record('token') },
      authorizeMailbox: openMailboxes,
    } as unknown as ApiDeps;
    const app = express();
    app.use('/api/v1', apiRoutes(deps));
    app.use(problemMiddleware(createLogger('error')));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    reached.length = 0;
  });

  const post = async (path: string, body: Buffer | string, headers: Record<string, string>) => {
    const response = await fetch(`${baseUrl}/api/v1${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return {
      status: response.status,
      type: response.headers.get('content-type') ?? '',
      body: (await response.json()) as { code?: string; detail?: string },
    };
  };

  const paths = [
    '/peer/register',
    '/message/relay',
    '/message/relay/batch',
    '/messages/ack',
    '/auth/challenge',
    '/auth/token',
  ];
  const valid = JSON.stringify({
    registration: 'a.b.c',
    address: 'x',
    message_ids: ['x'],
    messages: [{}],
    proof: 'a.b.c',
  });

  it.each(paths)('refuses a gzip body at %s with 415, and nothing is handled', async (path) => {
    const answer = await post(path, gzipSync(valid), { 'content-encoding': 'gzip' });
    expect(answer.status).toBe(415);
    expect(answer.type).toMatch(/^application\/problem\+json/);
    expect(answer.body.code).toBe('unsupported_media_type');
    expect(answer.body.detail).toMatch(/uncompressed/);
    expect(reached).toEqual([]);
  });

  it.each<[string, Buffer]>([
    ['deflate', deflateSync(valid)],
    ['br', brotliCompressSync(valid)],
    ['GZIP', gzipSync(valid)],
    ['gzip, identity', gzipSync(valid)],
    ['x-gzip', gzipSync(valid)],
  ])('refuses Content-Encoding %s with 415', async (encoding, body) => {
    const answer = await post('/peer/register', body, { 'content-encoding': encoding });
    expect(answer.status).toBe(415);
    expect(answer.body.code).toBe('unsupported_media_type');
    expect(reached).toEqual([]);
  });

  it('refuses a gzip body that inflates to 20 MiB with 415, not after inflating it', async () => {
    const bomb = gzipSync(JSON.stringify({ messages: [{ encrypted_content: 'A'.repeat(20 * 1024 * 1024) }] }));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const answer = await post('/message/relay/batch', bomb, { 'content-encoding': 'gzip' });
    expect(answer.status).toBe(415);
    expect(answer.body.code).toBe('unsupported_media_type');
    expect(reached).toEqual([]);
  });

  it('takes a body sent with Content-Encoding identity, or none', async () => {
    expect((await post('/peer/register', valid, { 'content-encoding': 'identity' })).status).toBe(202);
    expect((await post('/peer/register', valid, {})).status).toBe(202);
    expect(reached).toEqual(['register', 'register']);
  });
});
