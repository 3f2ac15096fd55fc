import { readFile } from 'node:fs/promises';
import { decodeProtectedHeader } from 'jose';
import {
  EnvelopeError,
  PeerIdentity,
  RelayClient,
  RelayClientError,
  isCompactJwe,
  type MessageStream,
  type OpenedMessage,
  type RelayedMessage,
} from '../client/index.js';
import { parseCommandLine } from './args.js';

export const DEMO_USAGE = `usage: relay demo [--url <base url>] [--api-key <key>] [--ca <pem file>] [--tokens | --no-tokens] [--message <text>]

Two peers, alice and bob, exchange end-to-end-encrypted messages through a running relay and
print each step: keys, addresses, registration, encryption, sending, receipt over the stream and
by polling, signature verification, decryption, and acknowledgement. It also reads the relay's
own copy back to show that the relay holds only ciphertext.

  --url <base url>   the relay (default http://127.0.0.1:8080)
  --api-key <key>    send X-API-Key on every request (npm start prints one, kept in .relay/dev-api-key);
                     implies --tokens, since a relay that wants API keys also wants mailbox tokens
  --ca <pem file>    trust this CA for https:// and wss:// (e.g. .relay/certs/ca.pem)
  --tokens           read mailboxes, ack and open streams with address-bound bearer tokens
  --no-tokens        do not, even with --api-key
  --message <text>   what alice sends to bob`;

interface DemoOptions {
  readonly url: string;
  readonly apiKey: string | undefined;
  readonly caFile: string | undefined;
  readonly tokens: boolean;
  readonly message: string;
}

const DEFAULT_MESSAGE = 'Hello Bob! This is Alice; the relay only ever sees ciphertext.';

function parseArgs(args: readonly string[]): DemoOptions | 'help' {
  const { values } = parseCommandLine(
    args,
    {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      'api-key': { type: 'string' },
      message: { type: 'string', default: DEFAULT_MESSAGE },
      ca: { type: 'string' },
      tokens: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    { negatable: true },
  );
  if (values.help) return 'help';
  const apiKey = values['api-key'];
  return {
    url: values.url,
    apiKey,
    caFile: values.ca,
    message: values.message,
    tokens: values.tokens ?? apiKey !== undefined,
  };
}

const short = (text: string, max = 72): string => (text.length <= max ? text : `${text.slice(0, max - 3)}...`);

/** Resolves with the value `probe` returns, polling until `timeoutMs`; the read model lags the log by a moment. */
async function poll<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `relay demo`: alice and bob exchange end-to-end-encrypted messages through a running relay, one
 * printed step at a time. Returns the process exit code: 0 on success, 1 if a step failed, 2 for
 * bad arguments.
 */
export async function runDemo(args: readonly string[], out: (line: string) => void): Promise<number> {
  let options: DemoOptions;
  try {
    const parsed = parseArgs(args);
    if (parsed === 'help') {
      out(DEMO_USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    out(`relay demo: ${(error as Error).message}`);
    out(DEMO_USAGE);
    return 2;
  }

  let step = 'start';
  const say = (name: string, line: string) => {
    step = name;
    out(`[${name}] ${line}`);
  };
  let stream: MessageStream | undefined;
  try {
    const auth = [
      options.apiKey === undefined ? undefined : 'an API key',
      options.tokens ? 'address-bound bearer tokens' : undefined,
    ].filter(Boolean);
    out(`relay demo: alice and bob talk through ${options.url}${auth.length > 0 ? ` with ${auth.join(' and ')}` : ''}`);

    // Different algorithms on each side, so one run exercises both key wrappings and both signatures.
    const [aliceKeys, bobKeys] = await Promise.all([
      PeerIdentity.generate({ signing: 'EdDSA', encryption: 'RSA-OAEP-256' }),
      PeerIdentity.generate({ signing: 'ES256', encryption: 'ECDH-ES+A256KW' }),
    ]);
    say('keys', 'alice: Ed25519 signing key (EdDSA) and RSA-2048 encryption key (RSA-OAEP-256)');
    say('keys', 'bob:   P-256 signing key (ES256) and X25519 encryption key (ECDH-ES+A256KW)');
    say('address', `alice = ${aliceKeys.address} (RFC 7638 SHA-256 thumbprint of her signing JWK)`);
    say('address', `bob   = ${bobKeys.address}`);

    const ca = options.caFile === undefined ? undefined : await readFile(options.caFile);
    const common = { baseUrl: options.url, apiKey: options.apiKey, useTokens: options.tokens, ca };
    const alice = new RelayClient({
      ...common,
      identity: aliceKeys,
      connectionInfo: { app: 'relay-demo', peer: 'alice' },
    });
    const bob = new RelayClient({ ...common, identity: bobKeys, connectionInfo: { app: 'relay-demo', peer: 'bob' } });

    step = 'register';
    for (const [name, client] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      const registered = await client.register();
      say(
        'register',
        `${name} is ${registered.status}: POST /api/v1/peer/register with a signed registration JWS -> 202 (on every in-sync replica)`,
      );
    }

    step = 'lookup';
    const bobRecord = await alice.waitForPeer(bob.address);
    say(
      'lookup',
      `alice fetched bob's keys (GET /api/v1/peers/:address); the signing key's thumbprint is bob's address`,
    );

    step = 'stream';
    stream = await bob.openStream();
    say(
      'stream',
      `bob opened the WebSocket stream (GET /api/v1/stream)${options.tokens ? ' with a bearer token bound to his address (challenge, signed proof, token)' : ''}`,
    );

    step = 'encrypt';
    const sealed = await alice.seal(bobRecord, options.message);
    const header = decodeProtectedHeader(sealed.encrypted_content);
    say(
      'encrypt',
      `alice encrypted ${Buffer.byteLength(options.message)} bytes for bob as a compact JWE: alg ${String(header.alg)}, enc ${String(header.enc)}, ` +
        `${sealed.encrypted_content.length} characters (${short(sealed.encrypted_content, 40)})`,
    );
    say(
      'sign',
      `alice signed {message_id, from, to, type, sha256 of the JWE, iat} as an EdDSA JWS for message ${sealed.message_id}`,
    );

    step = 'send';
    const accepted = await alice.relay(sealed);
    say(
      'send',
      `relay accepted ${accepted.message_id}: partition ${accepted.partition}, offset ${accepted.offset} (POST /api/v1/message/relay -> 202)`,
    );

    step = 'receive';
    let received: OpenedMessage;
    for (;;) {
      received = await stream.next(15_000);
      if (received.message_id === sealed.message_id) break;
    }
    say('receive', `bob received ${received.message_id} over the stream from ${received.from_address}`);
    say(
      'verify',
      `signature verified end to end: ${received.sender_alg} JWS, its jwk's thumbprint is alice's address, and the signed id, from, to, type and sha256 match`,
    );
    say('decrypt', `bob decrypted: "${received.text}"`);

    step = 'stored';
    const stored = await poll(
      async () => (await bob.fetchMessages()).messages.find((m: RelayedMessage) => m.message_id === sealed.message_id),
      15_000,
      "the relay's stored copy",
    );
    const parts = stored.encrypted_content.split('.').length;
    const isJwe = isCompactJwe(stored.encrypted_content);
    const leaks = stored.encrypted_content.includes(options.message);
    say(
      'stored',
      `the relay's copy (GET /api/v1/messages): encrypted_content is ${isJwe ? 'a compact JWE' : 'NOT a compact JWE'} of ${parts} base64url parts, ` +
        `${stored.encrypted_content === sealed.encrypted_content ? 'identical to what alice sent' : 'DIFFERENT from what alice sent'}, ` +
        `${leaks ? 'and CONTAINS the plaintext' : 'and does not contain the plaintext'}`,
    );
    if (!isJwe || leaks || stored.encrypted_content !== sealed.encrypted_content)
      throw new Error('the stored copy is not the ciphertext alice sent');

    step = 'ack';
    const acknowledged = await poll(
      async () => (await stream?.ack([received.message_id])) || undefined,
      5_000,
      'the acknowledgement',
    );
    say('ack', `bob acknowledged ${acknowledged} message over the stream ({"type":"ack"} -> ack_result)`);

    step = 'reply';
    const reply = `Hi Alice, Bob here. Got your message ${received.message_id.slice(0, 8)}.`;
    const replied = await bob.send(alice.address, reply, { type: 'text' });
    say(
      'reply',
      `bob encrypted a reply to alice's RSA key (RSA-OAEP-256 + A256GCM), signed it with ES256 and sent it: partition ${replied.partition}, offset ${replied.offset}`,
    );

    step = 'poll';
    const page = await poll(
      async () => {
        const got = await alice.receive();
        return got.messages.some((m) => m.message_id === replied.message_id) || got.rejected.length > 0
          ? got
          : undefined;
      },
      15_000,
      "bob's reply in alice's mailbox",
    );
    const [refused] = page.rejected;
    if (refused) throw refused.error;
    const answer = page.messages.find((m) => m.message_id === replied.message_id);
    if (!answer) throw new Error("bob's reply is missing");
    say('poll', `alice polled GET /api/v1/messages and received ${answer.message_id} from ${answer.from_address}`);
    say('verify', `signature verified end to end: ${answer.sender_alg} JWS by bob's key, claims and sha256 match`);
    say('decrypt', `alice decrypted: "${answer.text}"`);
    const ackedByAlice = await alice.ack([answer.message_id]);
    say('ack', `alice acknowledged ${ackedByAlice} message over HTTP (POST /api/v1/messages/ack)`);

    out(
      "demo complete: the relay carried and stored only ciphertext; both peers checked each other's signatures themselves",
    );
    return 0;
  } catch (error) {
    if (error instanceof RelayClientError) {
      out(`demo failed at "${step}": the relay answered ${error.code} (${error.status}): ${error.detail}`);
      if (error.code === 'network_error') out(`is a relay running at ${options.url}? (npm start)`);
      if (error.code === 'missing_api_key' || error.code === 'invalid_api_key')
        out('pass --api-key; npm start prints one and keeps it in .relay/dev-api-key');
      if (error.code === 'missing_token') out('pass --tokens: this relay wants address-bound tokens for mailboxes');
    } else if (error instanceof EnvelopeError) {
      out(`demo failed at "${step}": refused by the client: ${error.message}`);
    } else {
      out(`demo failed at "${step}": ${(error as Error).message}`);
    }
    return 1;
  } finally {
    await stream?.close();
  }
}
