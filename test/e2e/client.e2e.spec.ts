import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDevCerts } from '../../src/cli/dev-certs.js';
import { ApiKeyStore } from '../../src/ingress/api-keys.js';
import {
  PeerIdentity,
  RelayClient,
  RelayClientError,
  isCompactJwe,
  type OpenedMessage,
  type SentMessage,
} from '../../src/client/index.js';
import { eventually } from '../helpers/context.js';
import { startRelay, type RunningRelay } from '../helpers/relay.js';
import { readTopic } from '../helpers/topic-reader.js';

// Two reference clients round-trip end-to-end-encrypted messages through the whole relay
// (ingress, Kafka, projector, router, stream), and the stored copies are checked to be ciphertext.

describe('the reference client through the relay', () => {
  let relay: RunningRelay;
  let alice: RelayClient;
  let bob: RelayClient;

  beforeAll(async () => {
    relay = await startRelay('client');
    const [aliceKeys, bobKeys] = await Promise.all([
      PeerIdentity.generate({ signing: 'EdDSA', encryption: 'RSA-OAEP-256' }),
      PeerIdentity.generate({ signing: 'ES256', encryption: 'ECDH-ES+A256KW' }),
    ]);
    alice = new RelayClient({ baseUrl: relay.baseUrl, identity: aliceKeys, connectionInfo: { platform: 'test' } });
    bob = new RelayClient({ baseUrl: relay.baseUrl, identity: bobKeys });
    expect(await alice.register()).toMatchObject({ address: alice.address, status: 'registered' });
    expect(await bob.register()).toMatchObject({ address: bob.address, status: 'registered' });
    // A 202 means the event is durable; the peer directory shows it once it is projected.
    await Promise.all([alice.waitForPeer(bob.address), bob.waitForPeer(alice.address)]);
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const storedContent = async (id: string): Promise<string | undefined> =>
    (
      await relay.ctx.pool.query<{ encrypted_content: string }>('SELECT encrypted_content FROM messages WHERE id=$1', [
        id,
      ])
    ).rows[0]?.encrypted_content;

  /** The relay keeps only ciphertext: the Postgres row and the Kafka event hold exactly the JWE the client sent. */
  async function expectOnlyCiphertextStored(sent: SentMessage, plaintext: string): Promise<void> {
    const jwe = sent.message.encrypted_content;
    expect(isCompactJwe(jwe)).toBe(true);
    expect(jwe).not.toContain(plaintext);

    const row = await eventually(() => storedContent(sent.message_id), 15_000, 'the projected row');
    expect(row).toBe(jwe);
    expect(row).not.toContain(plaintext);

    const events = await readTopic(relay.ctx, relay.ctx.topics.mailbox);
    const record = events.find((e) => e.event.type === 'MessageSent' && e.event.data.message_id === sent.message_id);
    expect(record).toBeDefined();
    expect(record?.partition).toBe(sent.partition);
    expect(record?.offset).toBe(sent.offset);
    if (record?.event.type !== 'MessageSent') throw new Error('not a MessageSent');
    expect(record.event.data.encrypted_content).toBe(jwe);
    expect(record.event.data.signature).toBe(sent.message.signature);
    expect(JSON.stringify(record.event.data)).not.toContain(plaintext);
  }

  it("fetches a peer's keys and checks the signing key is the one its address names", async () => {
    const record = await alice.waitForPeer(bob.address);
    expect(record.signing_key).toEqual(bob.identity.signingKey);
    expect(record.encryption_key).toEqual(bob.identity.encryptionKey);
    expect(record.address).toBe(bob.address);
    const me = await bob.waitForPeer(alice.address);
    expect(me.connection_info).toEqual({ platform: 'test' });
    expect(me.encryption_key).toMatchObject({ kty: 'RSA', alg: 'RSA-OAEP-256' });
  });

  it('round-trips a message by stream: received, verified, decrypted, acknowledged', async () => {
    const plaintext = `stream secret ${randomUUID()}`;
    const delivered: OpenedMessage[] = [];
    const errors: Error[] = [];
    const stream = await bob.openStream({
      onMessage: (m) => void delivered.push(m),
      onError: (e) => void errors.push(e),
    });
    try {
      const sent = await alice.send(bob.address, plaintext, { type: 'chat.text' });
      expect(sent).toMatchObject({
        status: 'accepted',
        partition: expect.any(Number),
        offset: expect.stringMatching(/^\d+$/),
      });

      const received = await eventually(
        async () => delivered.find((m) => m.message_id === sent.message_id),
        15_000,
        'the pushed message',
      );
      expect(received).toMatchObject({
        from_address: alice.address,
        to_address: bob.address,
        message_type: 'chat.text',
        text: plaintext,
        sender_alg: 'EdDSA',
        sender_key: alice.identity.signingKey,
        encrypted_content: sent.message.encrypted_content,
      });
      await expectOnlyCiphertextStored(sent, plaintext);

      // The stream acknowledges it after the handler ran, in the background: it leaves the mailbox.
      await eventually(
        async () =>
          (await bob.fetchMessages()).messages.some((m) => m.message_id === sent.message_id) ? undefined : true,
        15_000,
        'the ack',
      );
      const row = await relay.ctx.pool.query<{ delivered: boolean }>('SELECT delivered FROM messages WHERE id=$1', [
        sent.message_id,
      ]);
      expect(row.rows[0]?.delivered).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await stream.close();
    }
  });

  it('round-trips a message by polling: fetched, verified, decrypted, acknowledged over HTTP', async () => {
    const plaintext = `polled secret ${randomUUID()}`;
    const sent = await bob.send(alice.address, plaintext);
    await expectOnlyCiphertextStored(sent, plaintext);

    // Read right after the send: the node that took the send waits for its projection.
    const stored = (await alice.fetchMessages()).messages.find((m) => m.message_id === sent.message_id);
    expect(stored?.encrypted_content).toBe(sent.message.encrypted_content);
    expect(stored?.encrypted_content).not.toContain(plaintext);

    const page = await alice.receive();
    expect(page.rejected).toEqual([]);
    const opened = page.messages.find((m) => m.message_id === sent.message_id);
    expect(opened).toMatchObject({ text: plaintext, from_address: bob.address, sender_alg: 'ES256' });
    expect(await alice.ack([sent.message_id])).toBe(1);
    expect(await alice.ack([sent.message_id])).toBe(0);
    // The client sends its acknowledgement's consistency token with its next read.
    expect((await alice.fetchMessages()).messages.map((m) => m.message_id)).not.toContain(sent.message_id);
  });

  it('reads the backlog pull-style when the stream opens, and acks over the stream', async () => {
    const plaintext = `backlog ${randomUUID()}`;
    const sent = await alice.send(bob.address, plaintext);
    // Opened right after the 202: the stream's backlog waits for the mailbox partition's end.
    const stream = await bob.openStream();
    try {
      const message = await stream.next(15_000);
      expect(message).toMatchObject({ message_id: sent.message_id, text: plaintext });
      expect(await stream.ack([message.message_id])).toBe(1);
    } finally {
      await stream.close();
    }
  });

  it('resumes a stream behind the last message the previous one received', async () => {
    const first = await bob.openStream();
    const before = [
      await alice.send(bob.address, 'before a'),
      await alice.send(bob.address, 'before b'),
      await alice.send(bob.address, 'before c'),
    ];
    const seen = [await first.next(15_000), await first.next(15_000), await first.next(15_000)];
    expect(seen.map((m) => m.message_id)).toEqual(before.map((s) => s.message_id));
    await first.close(); // none acknowledged

    const after = [await alice.send(bob.address, 'after d'), await alice.send(bob.address, 'after e')];
    const resumed = await bob.openStream({ resume: true });
    try {
      expect([(await resumed.next(15_000)).message_id, (await resumed.next(15_000)).message_id]).toEqual(
        after.map((s) => s.message_id),
      );
      // The ones the first stream had are still in the mailbox, for polling or a fresh stream.
      const pending = (await bob.fetchMessages()).messages.map((m) => m.message_id);
      expect(pending).toEqual(expect.arrayContaining([...before, ...after].map((s) => s.message_id)));
      expect(await bob.ack([...before, ...after].map((s) => s.message_id))).toBe(5);
    } finally {
      await resumed.close();
    }
  });

  it('sends a batch and drains the mailbox by polling', async () => {
    const texts = ['one', 'two', 'three'].map((t) => `${t} ${randomUUID()}`);
    const results = await bob.sendBatch(texts.map((plaintext) => ({ to: alice.address, plaintext })));
    expect(results.map((r) => ('accepted' in r ? r.accepted.status : r.error.code))).toEqual([
      'accepted',
      'accepted',
      'accepted',
    ]);
    const ids = results.map((r) => r.message.message_id);
    expect((await alice.fetchMessages()).messages.filter((m) => ids.includes(m.message_id))).toHaveLength(3);

    const seen: string[] = [];
    const drained = await alice.drain((m) => void seen.push(m.text));
    expect(seen).toEqual(texts);
    expect(drained).toEqual({ handled: 3, rejected: [], acknowledged: 3 });
  });

  it("surfaces the relay's refusals as RelayClientError with the problem's code", async () => {
    const sealed = await alice.seal(await alice.getPeer(bob.address), 'first');
    await alice.relay(sealed);
    const reused = await alice.seal(await alice.getPeer(bob.address), 'other content', {
      messageId: sealed.message_id,
    });
    let thrown: unknown;
    try {
      await alice.relay(reused);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RelayClientError);
    expect(thrown).toMatchObject({ status: 409, code: 'message_id_conflict', canRetry: false });
    expect((thrown as RelayClientError).problem?.['message_id']).toBe(sealed.message_id);
    // The same message again is de-duplicated to the original answer.
    const again = await alice.relay(sealed);
    expect(again.message_id).toBe(sealed.message_id);
  });
});

describe('the reference client through a relay with TLS and auth required', () => {
  let relay: RunningRelay;
  let ca: string;
  let apiKey: string;
  let alice: RelayClient;
  let bob: RelayClient;

  beforeAll(async () => {
    const certs = await makeDevCerts(await mkdtemp(join(tmpdir(), 'relay-client-certs-')));
    ca = await readFile(certs.ca, 'utf8');
    relay = await startRelay('client_auth', {
      RELAY_AUTH: 'required',
      RELAY_TLS_CERT: certs.cert,
      RELAY_TLS_KEY: certs.key,
    });
    apiKey = (await new ApiKeyStore(relay.ctx.pool).create('client-e2e')).key;
    const [aliceKeys, bobKeys] = await Promise.all([
      PeerIdentity.generate({ signing: 'ES256', encryption: 'RSA-OAEP-256' }),
      PeerIdentity.generate({ signing: 'EdDSA', encryption: 'ECDH-ES+A256KW' }),
    ]);
    const options = { baseUrl: relay.baseUrl, apiKey, useTokens: true, ca };
    alice = new RelayClient({ ...options, identity: aliceKeys });
    bob = new RelayClient({ ...options, identity: bobKeys });
    await alice.register();
    await bob.register();
    await Promise.all([alice.waitForPeer(bob.address), bob.waitForPeer(alice.address)]);
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const refusal = async (promise: Promise<unknown>): Promise<unknown> => {
    try {
      await promise;
    } catch (error) {
      return error;
    }
    throw new Error('expected a refusal');
  };

  it('round-trips by stream and by polling over HTTPS and WSS with an API key and bearer tokens', async () => {
    expect(relay.baseUrl).toMatch(/^https:/);
    const received: OpenedMessage[] = [];
    const stream = await bob.openStream({ onMessage: (m) => void received.push(m) });
    try {
      const toBob = await alice.send(bob.address, 'over TLS, by stream');
      const got = await eventually(
        async () => received.find((m) => m.message_id === toBob.message_id),
        15_000,
        'the pushed message',
      );
      expect(got.text).toBe('over TLS, by stream');
    } finally {
      await stream.close();
    }
    const toAlice = await bob.send(alice.address, 'over TLS, by polling');
    const page = await alice.receive();
    expect(page.messages.find((m) => m.message_id === toAlice.message_id)?.text).toBe('over TLS, by polling');
    expect(await alice.ack([toAlice.message_id])).toBe(1);
  });

  it("surfaces the gate's refusals: no API key, no token", async () => {
    const anonymous = new RelayClient({ baseUrl: relay.baseUrl, identity: alice.identity, ca });
    expect(await refusal(anonymous.register())).toMatchObject({ status: 401, code: 'missing_api_key' });
    const keyOnly = new RelayClient({ baseUrl: relay.baseUrl, identity: alice.identity, ca, apiKey });
    expect(await refusal(keyOnly.fetchMessages())).toMatchObject({ status: 401, code: 'missing_token' });
    const streamError = await refusal(keyOnly.openStream());
    expect(streamError).toBeInstanceOf(RelayClientError);
    expect(streamError).toMatchObject({ status: 401, code: 'missing_token' });
  });
});
