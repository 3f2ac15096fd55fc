import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';
import { inParallel, StreamClient, type Frame } from '../helpers/stream-client.js';
import { readTopic } from '../helpers/topic-reader.js';

const PAIRS = 1000;

// A client writes, then reads at once, like a client does: on another ingress node with the
// write's consistency token, or on the same node without one. The read model trails the log, and
// none of that may show.
describe('reading your own writes', () => {
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay(
      'consistency',
      {
        RELAY_RATE_SENDER_PER_SECOND: '100000',
        RELAY_RATE_SENDER_BURST: '100000',
        RELAY_STREAM_FRAMES_PER_SECOND: '100000',
      },
      { ingressNodes: 2 },
    );
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const [a, b] = [0, 1] as const;
  const node = (i: 0 | 1) => relay.nodes[i] as { baseUrl: string; wsUrl: string };

  it(`finds each of ${PAIRS} registrations on the other node right after its 202, given the token`, async () => {
    const peers = Array.from({ length: PAIRS }, () => TestPeer.create());
    const misses = await inParallel(peers, 16, async (peer, i) => {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      const registered = await call(node(writer).baseUrl, 'POST', '/api/v1/peer/register', await peer.registration());
      expect(registered.status).toBe(202);
      const token = registered.body['consistency_token'] as string;
      const found = await call(node(reader).baseUrl, 'GET', `/api/v1/peers/${peer.address}`, undefined, {
        'Consistency-Token': token,
      });
      return found.status === 200 &&
        found.body['address'] === peer.address &&
        found.headers.get('relay-consistency') === 'consistent'
        ? 0
        : 1;
    });
    expect(misses.filter((miss) => miss === 1)).toHaveLength(0);
  }, 240_000);

  it(`finds each of ${PAIRS} messages in its mailbox on the other node right after its 202, given the token`, async () => {
    const sender = TestPeer.create();
    const misses = await inParallel(
      Array.from({ length: PAIRS }, (_, i) => i),
      16,
      async (i) => {
        const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
        const recipient = TestPeer.create().address;
        const message = await sender.message(recipient);
        const sent = await call(node(writer).baseUrl, 'POST', '/api/v1/message/relay', message);
        expect(sent.status).toBe(202);
        const token = encodeURIComponent(sent.body['consistency_token'] as string);
        const page = await call<{ messages: { message_id: string }[] }>(
          node(reader).baseUrl,
          'GET',
          `/api/v1/messages?address=${recipient}&consistency_token=${token}`,
        );
        return page.body.messages.some((m) => m.message_id === message['message_id']) ? 0 : 1;
      },
    );
    expect(misses.filter((miss) => miss === 1)).toHaveLength(0);
  }, 240_000);

  it('finds a write on the node that made it without a token, and refuses a malformed token', async () => {
    const peer = TestPeer.create();
    expect((await call(node(a).baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
    const found = await call(node(a).baseUrl, 'GET', `/api/v1/peers/${peer.address}`);
    expect(found.status).toBe(200);
    expect(found.headers.get('relay-consistency')).toBe('consistent');

    const message = await TestPeer.create().message(peer.address);
    expect((await call(node(b).baseUrl, 'POST', '/api/v1/message/relay', message)).status).toBe(202);
    const page = await call<{ messages: { message_id: string }[] }>(
      node(b).baseUrl,
      'GET',
      `/api/v1/messages?address=${peer.address}`,
    );
    expect(page.body.messages.map((m) => m.message_id)).toEqual([message['message_id']]);

    for (const bad of [
      'mailbox:1',
      'inbox:0:1',
      'mailbox:0:99999999999999999999',
      Array.from({ length: 65 }, () => 'mailbox:0:1').join(','),
    ]) {
      const refused = await call(node(a).baseUrl, 'GET', `/api/v1/peers/${peer.address}`, undefined, {
        'Consistency-Token': bad,
      });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ code: 'invalid_request', field: 'consistency_token' });
    }
  });

  it('acknowledges each of 2,000 live messages the moment it arrives, leaving nothing pending', async () => {
    const sender = TestPeer.create();
    const recipient = TestPeer.create();
    const answers: Frame[] = [];
    const stream = await StreamClient.open(
      `${node(b).wsUrl}/api/v1/stream?address=${recipient.address}`,
      (frame, client) => {
        if (frame.type === 'message')
          client.ws.send(JSON.stringify({ type: 'ack', message_ids: [frame['message_id']] }));
        if (frame.type === 'ack_result' || frame.type === 'error') answers.push(frame);
      },
    );
    const ids: string[] = [];
    const messages = await Promise.all(Array.from({ length: 2000 }, () => sender.message(recipient.address)));
    for (let i = 0; i < messages.length; i += 100) {
      const batch = messages.slice(i, i + 100);
      ids.push(...batch.map((m) => m['message_id'] as string));
      const sent = await call<{ results: { status: string }[] }>(
        node(a).baseUrl,
        'POST',
        '/api/v1/message/relay/batch',
        { messages: batch },
      );
      expect(sent.body.results.every((r) => r.status === 'accepted')).toBe(true);
    }
    await stream.next(() => answers.length >= ids.length, 'an answer to every ack', 60_000);
    await stream.close();

    expect(answers.filter((f) => f.type === 'error')).toEqual([]);
    const statuses = answers.flatMap((f) => f['results'] as { message_id: string; status: string }[]);
    expect(new Set(statuses.map((r) => r.message_id))).toEqual(new Set(ids));
    expect(statuses.filter((r) => r.status !== 'acknowledged')).toEqual([]);

    const tokens = answers
      .map((f) => f['consistency_token'] as string)
      .join(',')
      .split(',');
    const latest = new Map<string, bigint>();
    for (const entry of tokens) {
      const cut = entry.lastIndexOf(':');
      const slot = entry.slice(0, cut);
      const offset = BigInt(entry.slice(cut + 1));
      if ((latest.get(slot) ?? -1n) < offset) latest.set(slot, offset);
    }
    const token = [...latest].map(([slot, offset]) => `${slot}:${offset}`).join(',');
    const pending = await call<{ messages: unknown[] }>(
      node(a).baseUrl,
      'GET',
      `/api/v1/messages?address=${recipient.address}`,
      undefined,
      { 'Consistency-Token': token },
    );
    expect(pending.headers.get('relay-consistency')).toBe('consistent');
    expect(pending.body.messages).toEqual([]);

    const delivered = (await readTopic(relay.ctx, relay.ctx.topics.mailbox)).filter(
      (e) => e.event.type === 'MessageDelivered' && e.key === recipient.address,
    );
    expect(delivered).toHaveLength(ids.length);
    expect(new Set(delivered.map((e) => (e.event.data as { message_id: string }).message_id))).toEqual(new Set(ids));
  }, 180_000);

  it('gives a stream that reconnects while messages keep arriving every unacknowledged message, once', async () => {
    const sender = TestPeer.create();
    const recipient = TestPeer.create();
    const url = `${node(b).wsUrl}/api/v1/stream?address=${recipient.address}`;
    const messages = await Promise.all(Array.from({ length: 600 }, () => sender.message(recipient.address)));
    const ids = messages.map((m) => m['message_id'] as string);
    const sending = (async () => {
      for (let i = 0; i < messages.length; i += 20) {
        const sent = await call<{ results: { status: string }[] }>(
          node(a).baseUrl,
          'POST',
          '/api/v1/message/relay/batch',
          { messages: messages.slice(i, i + 20) },
        );
        expect(sent.body.results.every((r) => r.status === 'accepted')).toBe(true);
      }
    })();

    const streams: StreamClient[] = [];
    let first = await StreamClient.open(url);
    streams.push(first);
    for (let round = 0; round < 4; round++) {
      await first.next(
        () => first.messages().length >= 50 * (round + 1) || first.messages().length >= ids.length,
        'some messages on the stream',
        60_000,
      );
      await first.close();
      first = await StreamClient.open(url);
      streams.push(first);
    }
    await sending;
    const last = first;
    await last.next(
      () => new Set(last.messages().map((f) => f['message_id'])).size >= ids.length,
      'every message on the last stream',
      60_000,
    );
    // Resuming behind a cursor: only what came after it, once.
    const middle = last.messages()[299] as Frame;
    const resumed = await StreamClient.open(`${url}&after=${String(middle['cursor'])}`);
    await resumed.next(() => resumed.messages().length >= 300, 'the messages after the cursor', 60_000);
    await Promise.all([last.close(), resumed.close()]);

    for (const stream of [...streams, resumed]) {
      const seen = stream.messages().map((f) => f['message_id'] as string);
      expect(seen).toHaveLength(new Set(seen).size); // never twice on one stream
    }
    expect(new Set(last.messages().map((f) => f['message_id']))).toEqual(new Set(ids));
    expect(last.messages().map((f) => f['message_id'])).toEqual(ids); // in log order
    expect(resumed.messages().map((f) => f['message_id'])).toEqual(ids.slice(300));
  }, 240_000);
});
