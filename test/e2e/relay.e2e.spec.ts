import { randomUUID } from 'node:crypto';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';
import { StreamClient } from '../helpers/stream-client.js';
import { readTopic, recordCount } from '../helpers/topic-reader.js';

describe('the core relay against the real stack', () => {
  let relay: RunningRelay;
  const alice = TestPeer.create('EdDSA');
  const bob = TestPeer.create('ES256');
  const carol = TestPeer.create('EdDSA');

  beforeAll(async () => {
    relay = await startRelay('relay');
    for (const peer of [alice, bob, carol]) {
      const answer = await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration());
      expect(answer.status).toBe(202);
      expect(answer.body).toMatchObject({ address: peer.address, status: 'registered' });
      expect(answer.body['consistency_token']).toBe(
        `peers:${String(answer.body['partition'])}:${String(answer.body['offset'])}`,
      );
    }
    // A 202 means the event is durable; the peer directory shows it once it is projected.
    const addresses = [alice, bob, carol].map((p) => p.address);
    await eventually(
      async () => {
        const { rows } = await relay.ctx.pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM peers WHERE address = ANY($1)',
          [addresses],
        );
        return rows[0]?.n === addresses.length ? true : undefined;
      },
      15_000,
      'the registrations projected',
    );
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const rowOf = async (id: string) =>
    (
      await relay.ctx.pool.query<{ delivered: boolean; delivered_at: Date | null; encrypted_content: string }>(
        'SELECT * FROM messages WHERE id = $1',
        [id],
      )
    ).rows[0];

  it('stores a message for an offline peer, delivers it on connect, and records the ack', async () => {
    const message = await alice.message(bob.address);
    const sent = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message);
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ message_id: message['message_id'], status: 'accepted' });
    expect(typeof sent.body['partition']).toBe('number');
    await eventually(() => rowOf(message['message_id'] as string), 15_000, 'the projected row');

    const stream = await StreamClient.open(`${relay.wsUrl}/api/v1/stream?address=${bob.address}`);
    const frame = await stream.next(
      (f) => f.type === 'message' && f['message_id'] === message['message_id'],
      'the backlog message',
    );
    expect(frame).toMatchObject({
      from_address: alice.address,
      to_address: bob.address,
      message_type: 'text',
      encrypted_content: message['encrypted_content'],
      signature: message['signature'],
    });

    stream.ws.send(JSON.stringify({ type: 'ack', message_ids: [message['message_id']] }));
    expect(await stream.next((f) => f.type === 'ack_result', 'the ack result')).toMatchObject({
      type: 'ack_result',
      acknowledged: 1,
      results: [{ message_id: message['message_id'], status: 'acknowledged' }],
    });
    const row = await eventually(
      async () => {
        const r = await rowOf(message['message_id'] as string);
        return r?.delivered ? r : undefined;
      },
      15_000,
      'the delivered row',
    );
    expect(row.delivered_at).toBeInstanceOf(Date);
    await stream.close();

    const events = (await readTopic(relay.ctx, relay.ctx.topics.mailbox)).filter(
      (e) => 'message_id' in e.event.data && e.event.data.message_id === message['message_id'],
    );
    expect(events.map((e) => e.event.type)).toEqual(['MessageSent', 'MessageDelivered']);
    expect(events.every((e) => e.key === bob.address)).toBe(true);
    expect(events[1]?.event.data).toMatchObject({ to_address: bob.address, via: 'stream' });
  });

  it('pushes a message to an online peer, and discover lists online peers only', async () => {
    const stream = await StreamClient.open(`${relay.wsUrl}/api/v1/stream?address=${bob.address}`);
    await eventually(
      async () => {
        const found = await call<{ peers: { address: string }[] }>(
          relay.baseUrl,
          'GET',
          `/api/v1/peers/discover?address=${alice.address}`,
        );
        return found.body.peers.some((p) => p.address === bob.address) ? found : undefined;
      },
      15_000,
      'bob online in discover',
    );
    const discovered = await call<{ peers: Record<string, unknown>[]; next_cursor: string | null }>(
      relay.baseUrl,
      'GET',
      `/api/v1/peers/discover?address=${alice.address}`,
    );
    const addresses = discovered.body.peers.map((p) => p['address']);
    expect(addresses).toContain(bob.address);
    expect(addresses).not.toContain(carol.address); // registered, never connected
    expect(addresses).not.toContain(alice.address); // the asker
    expect(discovered.body.peers.find((p) => p['address'] === bob.address)).toMatchObject({
      signing_key: bob.jwk,
      encryption_key: bob.encryptionKey,
      connection_info: { transport: 'test' },
    });

    const message = await alice.message(bob.address, 'live ciphertext');
    const sentAt = Date.now();
    expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).status).toBe(202);
    const frame = await stream.next((f) => f['message_id'] === message['message_id'], 'the live push');
    expect(frame['encrypted_content']).toBe('live ciphertext');
    relay.ctx.log.info({ ms: Date.now() - sentAt }, 'live push latency');

    const peer = await call(relay.baseUrl, 'GET', `/api/v1/peers/${bob.address}`);
    expect(peer.status).toBe(200);
    expect(peer.body).toMatchObject({ address: bob.address, online: true });
    await stream.close();
    await eventually(
      async () => {
        const p = await call(relay.baseUrl, 'GET', `/api/v1/peers/${bob.address}`);
        return p.body['online'] === false ? p : undefined;
      },
      15_000,
      'bob offline after close',
    );
  });

  it('answers a retried message id with the original answer and writes one event', async () => {
    const message = await alice.message(carol.address);
    const first = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message);
    const before = await recordCount(relay.ctx, relay.ctx.topics.mailbox);
    const again = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(await recordCount(relay.ctx, relay.ctx.topics.mailbox)).toBe(before);
  });

  it('relays a batch, answering each message in order, one bad message sinking none', async () => {
    const good = await alice.message(carol.address);
    const forged = await alice.message(carol.address, 'x', { signWith: bob });
    const alsoGood = await bob.message(carol.address);
    const answer = await call<{ results: Record<string, unknown>[] }>(
      relay.baseUrl,
      'POST',
      '/api/v1/message/relay/batch',
      {
        messages: [good, forged, { message_id: 'nope' }, alsoGood],
      },
    );
    expect(answer.status).toBe(200);
    const [r0, r1, r2, r3] = answer.body.results;
    expect(r0).toMatchObject({ message_id: good['message_id'], status: 'accepted' });
    expect(r1).toMatchObject({ code: 'bad_signature', status: 401 });
    expect(r2).toMatchObject({ code: 'invalid_request', status: 400, field: 'message_id' });
    expect(r3).toMatchObject({ message_id: alsoGood['message_id'], status: 'accepted' });
  });

  it('lists undelivered messages in accepted order, page by page, and acks over HTTP', async () => {
    const dave = TestPeer.create();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const message = await alice.message(dave.address, `m${i}`);
      ids.push(message['message_id'] as string);
      expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).status).toBe(202);
    }
    await eventually(
      async () => {
        const { rows } = await relay.ctx.pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM messages WHERE receiver_address = $1',
          [dave.address],
        );
        return rows[0]!.n === 5 ? true : undefined; // count(*) always yields one row
      },
      15_000,
      'five projected rows',
    );
    const first = await call<{ messages: { message_id: string }[]; next_cursor: string }>(
      relay.baseUrl,
      'GET',
      `/api/v1/messages?address=${dave.address}&limit=3`,
    );
    expect(first.body.messages.map((m) => m.message_id)).toEqual(ids.slice(0, 3));
    const second = await call<{ messages: { message_id: string }[]; next_cursor: string | null }>(
      relay.baseUrl,
      'GET',
      `/api/v1/messages?address=${dave.address}&limit=3&after=${first.body.next_cursor}`,
    );
    expect(second.body.messages.map((m) => m.message_id)).toEqual(ids.slice(3));
    expect(second.body.next_cursor).toBeNull();

    const unknown = randomUUID();
    const ack = await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', {
      address: dave.address,
      message_ids: [ids[0], ids[1], unknown],
    });
    expect(ack.body).toMatchObject({
      acknowledged: 2,
      results: [
        { message_id: ids[0], status: 'acknowledged' },
        { message_id: ids[1], status: 'acknowledged' },
        { message_id: unknown, status: 'not_found' },
      ],
    });
    const again = await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', {
      address: dave.address,
      message_ids: [ids[0]],
    });
    expect(again.body).toMatchObject({
      acknowledged: 0,
      results: [{ message_id: ids[0], status: 'already_delivered' }],
    });
    const wrongMailbox = await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', {
      address: carol.address,
      message_ids: [ids[2]],
    });
    expect(wrongMailbox.body).toMatchObject({
      acknowledged: 0,
      results: [{ message_id: ids[2], status: 'not_found' }],
    });
    await eventually(
      async () => {
        const page = await call<{ messages: { message_id: string }[] }>(
          relay.baseUrl,
          'GET',
          `/api/v1/messages?address=${dave.address}`,
        );
        return page.body.messages.length === 3 ? page : undefined;
      },
      15_000,
      'two messages gone from the mailbox',
    );
  });

  it('answers 404 peer_not_found for an unregistered address', async () => {
    const answer = await call(relay.baseUrl, 'GET', `/api/v1/peers/${TestPeer.create().address}`);
    expect(answer.status).toBe(404);
    expect(answer.contentType).toContain('application/problem+json');
    expect(answer.body).toMatchObject({ code: 'peer_not_found', status: 404 });
  });

  describe('refuses bad input with its documented error and writes no event', () => {
    const refusals: [string, () => Promise<{ body: unknown; headers?: Record<string, string> }>, number, string][] = [
      [
        'a forged signature',
        async () => ({
          body: await alice
            .message(bob.address, 'x', { signWith: carol, signed: {} })
            .then((m) => ({ ...m, signature: forgeWithHeader(m['signature'] as string, alice) })),
        }),
        401,
        'bad_signature',
      ],
      [
        'an address that does not match the key',
        async () => ({ body: await alice.message(bob.address, 'x', { signWith: carol }) }),
        401,
        'bad_signature',
      ],
      [
        'a stale iat',
        async () => ({
          body: await alice.message(bob.address, 'x', { signed: { iat: Math.floor(Date.now() / 1000) - 600 } }),
        }),
        401,
        'stale_signature',
      ],
      [
        'content other than what was signed',
        async () => ({ body: { ...(await alice.message(bob.address, 'signed')), encrypted_content: 'tampered' } }),
        401,
        'bad_signature',
      ],
      ['malformed JSON', async () => ({ body: '{"message_id": ' }), 400, 'malformed_json'],
      [
        'a missing field',
        async () => {
          const { message_type: _omitted, ...rest } = await alice.message(bob.address);
          return { body: rest };
        },
        400,
        'invalid_request',
      ],
      [
        'an oversize body',
        async () => ({ body: await alice.message(bob.address, 'x'.repeat(200_000)) }),
        413,
        'payload_too_large',
      ],
      [
        'content over 64 KiB',
        async () => ({ body: await alice.message(bob.address, 'y'.repeat(65_537)) }),
        400,
        'invalid_request',
      ],
      [
        'a body that is not JSON',
        async () => ({ body: 'hello', headers: { 'content-type': 'text/plain' } }),
        415,
        'unsupported_media_type',
      ],
    ];

    it.each(refusals)('%s', async (_name, make, status, code) => {
      const before = await recordCount(relay.ctx, relay.ctx.topics.mailbox);
      const { body, headers } = await make();
      const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', body, headers);
      expect(answer.status).toBe(status);
      expect(answer.contentType).toContain('application/problem+json');
      expect(answer.body).toMatchObject({ code, status });
      expect(await recordCount(relay.ctx, relay.ctx.topics.mailbox)).toBe(before);
    });

    it('a reused message id with other content', async () => {
      const original = await alice.message(bob.address, 'first');
      expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', original)).status).toBe(202);
      const before = await recordCount(relay.ctx, relay.ctx.topics.mailbox);
      const reuse = await alice.message(bob.address, 'second', { messageId: original['message_id'] as string });
      const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', reuse);
      expect(answer.status).toBe(409);
      expect(answer.body).toMatchObject({ code: 'message_id_conflict' });
      expect(await recordCount(relay.ctx, relay.ctx.topics.mailbox)).toBe(before);
    });
  });
});

/** Keeps a JWS's payload and signature but claims another peer's key in the header. */
function forgeWithHeader(jws: string, victim: TestPeer): string {
  const [, payload, signature] = jws.split('.');
  const header = Buffer.from(JSON.stringify({ alg: victim.alg, jwk: victim.jwk })).toString('base64url');
  return `${header}.${payload}.${signature}`;
}
