import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo } from '../../src/cli/demo.js';
import { makeDevCerts } from '../../src/cli/dev-certs.js';
import { ApiKeyStore } from '../../src/ingress/api-keys.js';
import { startRelay, type RunningRelay } from '../helpers/relay.js';

describe('relay demo against the relay', () => {
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay('client_demo');
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  it('prints every step of an encrypted exchange and shows the stored copy is ciphertext', async () => {
    const lines: string[] = [];
    const message = 'the eagle lands at midnight';
    const code = await runDemo(['--url', relay.baseUrl, '--api-key', 'demo-key', '--message', message], (line) =>
      lines.push(line),
    );
    const output = lines.join('\n');
    expect({ code, output }).toEqual({ code: 0, output: expect.any(String) });

    const step = (name: string) => lines.filter((line) => line.startsWith(`[${name}] `));
    expect(step('keys').join('\n')).toMatch(/Ed25519.*RSA-OAEP-256[\s\S]*P-256.*X25519/);
    expect(step('address')).toHaveLength(2);
    for (const line of step('address')) expect(line).toMatch(/= [A-Za-z0-9_-]{43}/);
    expect(step('register')).toHaveLength(2);
    expect(step('encrypt')[0]).toMatch(/compact JWE: alg ECDH-ES\+A256KW, enc A256GCM/);
    expect(step('send')[0]).toMatch(/partition \d+, offset \d+/);
    expect(step('receive')[0]).toMatch(/over the stream/);
    expect(step('verify')).toHaveLength(2);
    for (const line of step('verify')) expect(line).toMatch(/signature verified end to end/);
    expect(step('decrypt')[0]).toBe(`[decrypt] bob decrypted: "${message}"`);
    expect(step('stored')[0]).toMatch(
      /a compact JWE of 5 base64url parts, identical to what alice sent, and does not contain the plaintext/,
    );
    expect(step('ack')).toEqual([
      '[ack] bob acknowledged 1 message over the stream ({"type":"ack"} -> ack_result)',
      '[ack] alice acknowledged 1 message over HTTP (POST /api/v1/messages/ack)',
    ]);
    expect(step('reply')[0]).toMatch(/RSA-OAEP-256 \+ A256GCM/);
    expect(step('poll')[0]).toMatch(/alice polled GET \/api\/v1\/messages/);
    expect(step('decrypt')[1]).toMatch(/alice decrypted: "Hi Alice, Bob here/);
    expect(lines.at(-1)).toMatch(/^demo complete/);
    // Only the decrypt step shows the plaintext; the stored copy line does not.
    expect(lines.filter((line) => line.includes(message))).toEqual([`[decrypt] bob decrypted: "${message}"`]);
  });

  it('says what failed, with exit code 1, when no relay answers', async () => {
    const lines: string[] = [];
    const code = await runDemo(['--url', 'http://127.0.0.1:9'], (line) => lines.push(line));
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/demo failed at "register": the relay answered network_error \(0\)/);
  });

  it('refuses unknown options with exit code 2 and the usage', async () => {
    const lines: string[] = [];
    expect(await runDemo(['--nope'], (line) => lines.push(line))).toBe(2);
    expect(lines.join('\n')).toMatch(/unknown option '--nope'[\s\S]*usage: relay demo/);
  });
});

describe('relay demo against a relay with TLS and auth required (as npm start runs it)', () => {
  let relay: RunningRelay;
  let caFile: string;
  let apiKey: string;

  beforeAll(async () => {
    const certs = await makeDevCerts(await mkdtemp(join(tmpdir(), 'relay-demo-certs-')));
    caFile = certs.ca;
    relay = await startRelay('client_demo_auth', {
      RELAY_AUTH: 'required',
      RELAY_TLS_CERT: certs.cert,
      RELAY_TLS_KEY: certs.key,
    });
    apiKey = (await new ApiKeyStore(relay.ctx.pool).create('demo')).key;
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  it('runs with --api-key (which implies bearer tokens) and --ca over HTTPS and WSS', async () => {
    const lines: string[] = [];
    const code = await runDemo(['--url', relay.baseUrl, '--api-key', apiKey, '--ca', caFile], (line) =>
      lines.push(line),
    );
    expect({ code, lines }).toMatchObject({ code: 0 });
    expect(lines[0]).toBe(
      `relay demo: alice and bob talk through ${relay.baseUrl} with an API key and address-bound bearer tokens`,
    );
    expect(lines.find((line) => line.startsWith('[stream] '))).toMatch(/with a bearer token bound to his address/);
    expect(lines.find((line) => line.startsWith('[stored] '))).toMatch(/does not contain the plaintext/);
    expect(lines.at(-1)).toMatch(/^demo complete/);
  });

  it('fails at registration, naming the code, without an API key', async () => {
    const lines: string[] = [];
    expect(await runDemo(['--url', relay.baseUrl, '--ca', caFile], (line) => lines.push(line))).toBe(1);
    expect(lines.slice(-2)).toEqual([
      expect.stringMatching(/^demo failed at "register": the relay answered missing_api_key \(401\)/),
      'pass --api-key; npm start prints one and keeps it in .relay/dev-api-key',
    ]);
  });
});
