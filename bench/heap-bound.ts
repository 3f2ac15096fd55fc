import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.js';
import { PROJECT_ROOT } from '../src/config/paths.js';
import { cleanupRun } from './cleanup.js';
import { runEnv } from './run-env.js';
import { deriveAddress } from '../src/crypto/address.js';
import { ApiKeyStore } from '../src/ingress/api-keys.js';
import { openResources } from '../src/app/resources.js';
import { createLogger } from '../src/observability/logger.js';

/**
 * Shows whether the ingress's heap stays bounded under what an attacker chooses freely: API key
 * ids and JWS headers. One ingress process (RELAY_AUTH=required) takes, one phase after another,
 * many distinct unknown API keys, many distinct oversized JWS headers, and many distinct headers
 * whose signatures verify. After each phase the ingress's garbage is collected through its
 * inspector and its live heap is read. Prints a Markdown report and saves it (and JSON) under
 * bench/results/heap-bound-<stamp>.*. It reports and never asserts.
 *
 *   npm run bench:heap                       # 100,000 + 100,000 + 30,000 requests, a few minutes
 *   npm run bench:heap -- --requests 20000   # fewer, for a smoke run
 *   npm run bench:heap -- --cli /other/checkout/dist/cli/main.js --label before
 */

const USAGE = `usage: npm run bench:heap -- [--requests n] [--signed n] [--header-bytes n] [--connections n] [--cli path] [--label text]

  --requests <n>      unknown API keys, and oversized JWS headers, each (default 100000)
  --signed <n>        distinct headers whose signature verifies (default 30000)
  --header-bytes <n>  characters of each oversized protected header (default 8192)
  --connections <n>   requests in flight (default 64)
  --cli <path>        the relay CLI to run as the ingress (default dist/cli/main.js of this checkout)
  --label <text>      a name for this run in the report (default: the commit)`;

const RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results');
const say = (line: string) => process.stderr.write(`[heap] ${line}\n`);
const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

interface Options {
  readonly requests: number;
  readonly signed: number;
  readonly headerBytes: number;
  readonly connections: number;
  readonly cli: string;
  readonly label: string | undefined;
}

function parseOptions(argv: readonly string[]): Options | undefined {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      requests: { type: 'string' },
      signed: { type: 'string' },
      'header-bytes': { type: 'string' },
      connections: { type: 'string' },
      cli: { type: 'string' },
      label: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const whole = (raw: string | undefined, name: string, fallback: number, max: number) => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max)
      throw new Error(`--${name} must be a whole number from 1 to ${max}, not "${raw}"`);
    return value;
  };
  return {
    requests: whole(values.requests, 'requests', 100_000, 10_000_000),
    signed: whole(values.signed, 'signed', 30_000, 10_000_000),
    headerBytes: whole(values['header-bytes'], 'header-bytes', 8192, 60_000),
    connections: whole(values.connections, 'connections', 64, 1024),
    cli: values.cli ?? join(PROJECT_ROOT, 'dist', 'cli', 'main.js'),
    label: values.label,
  };
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });

/** Garbage collection and heap figures of another Node process, through its inspector. */
class HeapProbe {
  private nextId = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString()) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.waiting.get(message.id)?.(message.result);
    });
  }

  static connect(url: string): Promise<HeapProbe> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new HeapProbe(ws)));
      ws.once('error', reject);
    });
  }

  private call<T>(method: string): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, resolve as (result: unknown) => void);
      this.ws.send(JSON.stringify({ id, method, params: {} }));
    });
  }

  /** The live heap after two full collections (what the process still holds), in bytes. */
  async liveHeap(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    const { usedSize } = await this.call<{ usedSize: number }>('Runtime.getHeapUsage');
    return usedSize;
  }

  close(): void {
    this.ws.close();
  }
}

const rssOf = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
};

/**
 * One request over a keep-alive agent; resolves with the status once the answer is read. node:http
 * costs this process less than fetch, and the load generator shares the machine with the ingress.
 */
function send(
  agent: Agent,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        agent,
        method: init.method ?? 'GET',
        headers:
          init.body === undefined
            ? init.headers
            : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(init.body);
  });
}

/** Runs `total` requests, `connections` at a time; counts answers by status. */
async function load(
  total: number,
  connections: number,
  request: (i: number) => Promise<number>,
): Promise<{ seconds: number; statuses: Record<string, number> }> {
  const statuses: Record<string, number> = {};
  let next = 0;
  const started = performance.now();
  let reported = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < total) {
        const i = next++;
        const status = await request(i).catch(() => 0);
        statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
        if (i - reported >= total / 10) {
          reported = i;
          say(`  ${i} / ${total}`);
        }
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, statuses };
}

interface Phase {
  readonly name: string;
  readonly requests: number;
  readonly seconds: number;
  readonly statuses: Record<string, number>;
  readonly liveHeapBytes: number;
  readonly rssBytes: number;
}

function spawnRelay(
  cli: string,
  command: string,
  env: Record<string, string>,
  logDir: string,
  nodeFlags: string[] = [],
): ChildProcess {
  const log = createWriteStream(join(logDir, `${command}.log`), { flags: 'a' });
  const child = spawn(process.execPath, [...nodeFlags, cli, command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  return child;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const id = randomBytes(4).toString('hex');
  const port = await freePort();
  const env = runEnv('heap', id, port, {
    RELAY_AUTH: 'required',
    // The worst case for memory: an attacker spread over enough addresses that no failure budget
    // runs out, and a key allowed any rate. With the defaults, the 21st failure from one address
    // would be answered 429 before any cache is touched.
    RELAY_RATE_AUTH_FAILURES_PER_MINUTE: '1000000',
    RELAY_RATE_AUTH_FAILURES_BURST: '1000000',
    RELAY_RATE_KEY_PER_SECOND: '10000000',
    RELAY_RATE_KEY_BURST: '10000000',
    // Every unknown key is one query: a larger pool keeps the phase short on a busy machine.
    RELAY_DATABASE_POOL: '32',
  });
  const config = loadConfig(env);
  const resources = openResources(config, createLogger('warn', { bench: 'heap' }));
  const logDir = join(PROJECT_ROOT, '.relay', 'bench', `heap-${id}`);
  mkdirSync(logDir, { recursive: true });
  const baseUrl = `http://127.0.0.1:${port}`;
  let ingress: ChildProcess | undefined;
  let probe: HeapProbe | undefined;
  let agent: Agent | undefined;
  try {
    say(`relay setup (schema ${config.postgres.schema}, topics ${config.kafka.topicPrefix}*)`);
    const setup = spawnRelay(options.cli, 'setup', env, logDir);
    const code = await new Promise<number | null>((resolve) => setup.once('exit', resolve));
    if (code !== 0) throw new Error(`relay setup exited with ${code}; see ${logDir}/setup.log`);
    const apiKey = (await new ApiKeyStore(resources.pool).create('heap-bench')).key;

    say(`starting the ingress: ${options.cli}`);
    ingress = spawnRelay(options.cli, 'ingress', env, logDir, ['--inspect=127.0.0.1:0']);
    const child = ingress;
    const inspectorUrl = await new Promise<string>((resolve, reject) => {
      let seen = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        seen = (seen + chunk.toString()).slice(-4000);
        const url = /Debugger listening on (ws:\/\/\S+)/.exec(seen)?.[1];
        if (url) resolve(url);
      });
      child.once('exit', (exitCode) =>
        reject(new Error(`the ingress exited (${exitCode}); see ${logDir}/ingress.log`)),
      );
    });
    const deadline = Date.now() + 60_000;
    while (
      !(await fetch(`${baseUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error('the ingress was not ready within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    probe = await HeapProbe.connect(inspectorUrl);
    const pid = ingress.pid ?? 0;

    // Valid traffic first, so that what follows is measured against a warm process.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: options.connections });
    agent = keepAlive;
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    // The raw key is the SubjectPublicKeyInfo's last 32 bytes (see bench/peers.ts on exporting to JWK).
    const jwk = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64url'),
    };
    const address = deriveAddress(jwk);
    await load(2_000, options.connections, () =>
      send(keepAlive, `${baseUrl}/api/v1/peers/discover?address=${address}`, { headers: { 'x-api-key': apiKey } }),
    );
    const phases: Phase[] = [];
    const measure = async (
      name: string,
      requests: number,
      run: { seconds: number; statuses: Record<string, number> },
    ) => {
      const phase = { name, requests, ...run, liveHeapBytes: await probe!.liveHeap(), rssBytes: rssOf(pid) };
      phases.push(phase);
      say(
        `${name}: live heap ${MiB(phase.liveHeapBytes)}, RSS ${MiB(phase.rssBytes)} (${run.seconds.toFixed(1)} s, ${JSON.stringify(run.statuses)})`,
      );
    };
    await measure('warm (2,000 valid requests)', 2_000, { seconds: 0, statuses: {} });

    say(`${options.requests} distinct unknown API keys`);
    const secret = 'A'.repeat(43);
    const unknownKeys = await load(options.requests, options.connections, async (i) => {
      const keyId = `${i.toString(36)}${randomBytes(9).toString('hex')}`
        .replace(/[^A-Za-z0-9]/g, 'x')
        .slice(0, 12)
        .padEnd(12, 'x');
      return send(keepAlive, `${baseUrl}/api/v1/peers/discover?address=${address}`, {
        headers: { 'x-api-key': `rk_${keyId}_${secret}` },
      });
    });
    await measure(`${options.requests.toLocaleString('en')} unknown API keys`, options.requests, unknownKeys);

    say(`${options.requests} distinct oversized JWS headers of ${options.headerBytes} characters`);
    const payload = Buffer.from(
      JSON.stringify({ address, encryption_key: jwk, iat: Math.floor(Date.now() / 1000) }),
    ).toString('base64url');
    const oversized = await load(options.requests, options.connections, async (i) => {
      const padding = 'x'.repeat(Math.max(0, Math.floor((options.headerBytes * 3) / 4) - 120));
      const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', jwk, n: i, pad: padding })).toString('base64url');
      return send(keepAlive, `${baseUrl}/api/v1/peer/register`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ registration: `${header}.${payload}.${randomBytes(64).toString('base64url')}` }),
      });
    });
    await measure(`${options.requests.toLocaleString('en')} oversized JWS headers`, options.requests, oversized);

    say(
      `${options.signed} distinct headers just under 1,024 characters whose signatures verify (token proofs with a wrong nonce)`,
    );
    const signedRun = await load(options.signed, options.connections, async (i) => {
      const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', jwk, n: i, pad: 'y'.repeat(620) })).toString(
        'base64url',
      );
      const body = Buffer.from(
        JSON.stringify({ address, nonce: 'not-a-nonce', iat: Math.floor(Date.now() / 1000) }),
      ).toString('base64url');
      const proof = `${header}.${body}.${sign(null, Buffer.from(`${header}.${body}`), privateKey).toString('base64url')}`;
      return send(keepAlive, `${baseUrl}/api/v1/auth/token`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ proof }),
      });
    });
    await measure(`${options.signed.toLocaleString('en')} verified distinct headers`, options.signed, signedRun);

    const report = render(options, phases);
    const stamp = new Date()
      .toISOString()
      .replace(/\.\d+Z$/, '')
      .replace('T', '-')
      .replace(/:/g, '');
    const base = join(RESULTS_DIR, `heap-bound-${stamp}`);
    writeFileSync(`${base}.md`, report);
    writeFileSync(`${base}.json`, `${JSON.stringify({ options, phases }, null, 2)}\n`);
    process.stdout.write(report);
    say(`saved ${base}.md and .json`);
  } finally {
    probe?.close();
    agent?.destroy();
    if (ingress && ingress.exitCode === null) {
      const exited = new Promise((resolve) => ingress?.once('exit', resolve));
      ingress.kill('SIGTERM');
      const timer = setTimeout(() => ingress?.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await cleanupRun(resources, config).catch((error: unknown) => say(`cleanup failed: ${String(error)}`));
    await resources.close();
  }
}

function render(options: Options, phases: readonly Phase[]): string {
  const label = options.label ?? gitDescribe();
  const first = phases[0];
  const rows = phases.map(
    (p) =>
      `| ${p.name} | ${p.seconds > 0 ? `${p.seconds.toFixed(1)} s (${Math.round(p.requests / p.seconds)}/s)` : ''} | ${Object.entries(
        p.statuses,
      )
        .map(([status, count]) => `${status}: ${count}`)
        .join(
          ', ',
        )} | ${MiB(p.liveHeapBytes)} | ${first ? `${p.liveHeapBytes >= first.liveHeapBytes ? '+' : ''}${MiB(p.liveHeapBytes - first.liveHeapBytes)}` : ''} | ${MiB(p.rssBytes)} |`,
  );
  return `# Ingress heap under attacker-chosen keys and headers (${label})

One ingress process (\`${options.cli}\`), RELAY_AUTH=required, failure budget and key rate set out
of reach (the worst case for memory), 32 PostgreSQL connections. ${options.connections} requests in flight. Live heap: after two
full garbage collections through the inspector, so it is what the process still holds.

| phase | time | answers | live heap | since warm | RSS |
|---|---|---|---|---|---|
${rows.join('\n')}

- unknown API keys: \`GET /api/v1/peers/discover\` with \`rk_<new 12-character id>_<secret>\` each time.
- oversized JWS headers: \`POST /api/v1/peer/register\` whose protected header is ${options.headerBytes}
  characters and differs every time, with a random signature.
- verified distinct headers: \`POST /api/v1/auth/token\` with a proof whose header (about 900
  characters) differs every time and whose signature verifies; the nonce is wrong, so no token.
`;
}

function gitDescribe(): string {
  try {
    const head = readFileSync(join(PROJECT_ROOT, '.git', 'HEAD'), 'utf8').trim();
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    return (ref ? readFileSync(join(PROJECT_ROOT, '.git', ref), 'utf8').trim() : head).slice(0, 7);
  } catch {
    return 'unknown commit';
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[heap] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
