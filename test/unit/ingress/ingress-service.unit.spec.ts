import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { loadConfig } from '../../../src/config/config.js';
import { IngressService, MAX_HEADERS_COUNT, type ServerLimits } from '../../../src/ingress/ingress-service.js';
import { createLogger } from '../../../src/observability/logger.js';

// The ingress's HTTP server on a loopback port, with limits small enough to reach in a test. Each
// check waits for the server to act (a 408, a closed socket) rather than timing it.
const LIMITS: ServerLimits = {
  headersTimeoutMs: 2_000,
  requestTimeoutMs: 3_000,
  keepAliveTimeoutMs: 1_000,
  maxConnections: 3,
};

interface Running {
  readonly port: number;
  readonly server: Server;
  stop(): Promise<void>;
}

async function startIngress(limits: ServerLimits): Promise<Running> {
  const app = express();
  app.get('/headers', (req, res) => {
    res.json({ count: Object.keys(req.headers).length });
  });
  let server: Server | undefined;
  const ingress = new IngressService(app, {
    host: '127.0.0.1',
    port: 0,
    log: createLogger('error'),
    limits,
    onServer: (s) => (server = s),
  });
  const controller = new AbortController();
  const running = ingress.run(controller.signal);
  const { port } = await ingress.address();
  if (!server) throw new Error('the ingress did not hand over its server');
  return {
    port,
    server,
    async stop() {
      controller.abort();
      await running;
    },
  };
}

const sockets: Socket[] = [];

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

const open = async (port: number): Promise<Socket> => {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.setEncoding('latin1');
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
};

/** Everything the server sends until it closes the connection. */
const untilClosed = (socket: Socket): Promise<string> =>
  new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('error', () => undefined);
    socket.once('close', () => resolve(text));
  });

describe('the ingress server limits', () => {
  let ingress: Running;

  beforeAll(async () => {
    ingress = await startIngress({ ...LIMITS, maxConnections: 1_000 });
  });

  afterAll(async () => {
    await ingress.stop();
  });

  it('answers 408 and closes a connection whose headers do not finish', async () => {
    const socket = await open(ingress.port);
    const closed = untilClosed(socket);
    socket.write('GET /headers HTTP/1.1\r\nHost: relay\r\nX-Slow: '); // and never the blank line
    expect(await closed).toMatch(/^HTTP\/1\.1 408 /);
  }, 20_000);

  it('answers 408 and closes a connection whose body does not finish', async () => {
    const socket = await open(ingress.port);
    const closed = untilClosed(socket);
    socket.write(
      'POST /headers HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
    );
    expect(await closed).toMatch(/^HTTP\/1\.1 408 /);
  }, 20_000);

  it('tells keep-alive clients its idle timeout', async () => {
    const response = await fetch(`http://127.0.0.1:${ingress.port}/headers`);
    await response.text();
    expect(response.headers.get('keep-alive')).toBe(`timeout=${LIMITS.keepAliveTimeoutMs / 1000}`);
  });

  it(`passes at most ${MAX_HEADERS_COUNT} headers of a request on`, async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 500; i++) many[`x-filler-${i}`] = 'x';
    const response = await fetch(`http://127.0.0.1:${ingress.port}/headers`, { headers: many });
    const { count } = (await response.json()) as { count: number };
    expect(count).toBeLessThanOrEqual(MAX_HEADERS_COUNT);
  });
});

describe('the ingress connection cap', () => {
  let ingress: Running;

  beforeAll(async () => {
    ingress = await startIngress(LIMITS);
  });

  afterAll(async () => {
    await ingress.stop();
  });

  it('closes connections beyond the cap as they arrive, and serves those within it', async () => {
    const { server, port } = ingress;
    const held: Socket[] = [];
    for (let i = 0; i < LIMITS.maxConnections; i++) {
      const accepted = new Promise((resolve) => server.once('connection', resolve));
      held.push(await open(port));
      await accepted;
    }
    const refused = await open(port);
    expect(await untilClosed(refused)).toBe('');
    const first = held[0] as Socket;
    const answer = new Promise<string>((resolve) => first.once('data', (chunk: string) => resolve(chunk)));
    first.write('GET /headers HTTP/1.1\r\nHost: relay\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('the server limits in the configuration', () => {
  it("has defaults tighter than Node's, with keep-alive below the headers timeout", () => {
    const { http } = loadConfig({});
    expect(http).toMatchObject({
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 10_000,
      maxConnections: 10_000,
    });
  });

  it('refuses a keep-alive timeout not below the headers timeout', () => {
    expect(() =>
      loadConfig({ RELAY_HTTP_HEADERS_TIMEOUT_MS: '5000', RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS: '5000' }),
    ).toThrow(/RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS must be less than RELAY_HTTP_HEADERS_TIMEOUT_MS/);
  });

  it('refuses a request timeout below the headers timeout', () => {
    expect(() =>
      loadConfig({ RELAY_HTTP_HEADERS_TIMEOUT_MS: '30000', RELAY_HTTP_REQUEST_TIMEOUT_MS: '20000' }),
    ).toThrow(/RELAY_HTTP_REQUEST_TIMEOUT_MS must be at least RELAY_HTTP_HEADERS_TIMEOUT_MS/);
  });

  it('refuses a connection cap of 0', () => {
    expect(() => loadConfig({ RELAY_HTTP_MAX_CONNECTIONS: '0' })).toThrow(
      /RELAY_HTTP_MAX_CONNECTIONS must be a whole number from 1/,
    );
  });
});
