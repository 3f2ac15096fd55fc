import { randomUUID } from 'node:crypto';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';
import { StreamClient } from '../helpers/stream-client.js';
import { readTopic } from '../helpers/topic-reader.js';

const busy = TestPeer.create();

// Rate budgets are spent only by new messages, per sender and per recipient; streams are bounded
// in number and in the frames they may send.
describe('rate and stream limits', () => {
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay('limits', {
      RELAY_RATE_SENDER_PER_SECOND: '1',
      RELAY_RATE_SENDER_BURST: '3',
      RELAY_RATE_RECIPIENT_PER_SECOND: '1',
      RELAY_RATE_RECIPIENT_BURST: '3',
      RELAY_RATE_RECIPIENT_OVERRIDES: `${busy.address}=1000/1000`,
      RELAY_STREAMS_PER_ADDRESS: '2',
      RELAY_STREAM_FRAMES_PER_SECOND: '5',
    });
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const relayBatch = (messages: readonly Record<string, string>[]) =>
    call<{ results: Record<string, unknown>[] }>(relay.baseUrl, 'POST', '/api/v1/message/relay/batch', { messages });

  it("does not charge a replayed message to its sender's budget, and decides an id repeated in a batch once", async () => {
    const sender = TestPeer.create();
    const message = await sender.message(TestPeer.create().address);
    const first = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message);
    expect(first.status).toBe(202);

    // Anyone holding the signed message replays it: a batch of 500 copies, then 20 single sends.
    const replayed = await relayBatch(Array.from({ length: 500 }, () => message));
    expect(replayed.body.results).toHaveLength(500);
    for (const result of replayed.body.results) expect(result).toEqual(first.body);
    for (let i = 0; i < 20; i++)
      expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).body).toEqual(first.body);

    // The sender's burst of 3 is untouched by all that (520 charges would keep it at 429 for
    // minutes): two more new messages go through.
    for (let i = 0; i < 2; i++)
      expect(
        (await call(relay.baseUrl, 'POST', '/api/v1/message/relay', await sender.message(TestPeer.create().address)))
          .status,
      ).toBe(202);

    const events = (await readTopic(relay.ctx, relay.ctx.topics.mailbox)).filter(
      (e) => (e.event.data as { message_id?: string }).message_id === message['message_id'],
    );
    expect(events).toHaveLength(1);
  });

  it('limits what one recipient receives from many senders, except at a raised rate for a known busy address', async () => {
    const recipient = TestPeer.create();
    const senders = Array.from({ length: 5 }, () => TestPeer.create());
    const flood = await relayBatch(await Promise.all(senders.map((s) => s.message(recipient.address))));
    const statuses = flood.body.results.map((r) => r['status']);
    expect(statuses.slice(0, 3)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(flood.body.results[3]).toMatchObject({
      code: 'rate_limited',
      detail: expect.stringContaining(recipient.address) as unknown,
    });
    expect(Number(flood.body.results[3]?.['retry_after'])).toBeGreaterThanOrEqual(1);

    const many = Array.from({ length: 40 }, () => TestPeer.create());
    const toBusy = await relayBatch(await Promise.all(many.map((s) => s.message(busy.address))));
    expect(toBusy.body.results.filter((r) => r['status'] !== 'accepted')).toEqual([]);
  });

  it('refuses one stream too many for an address, and closes a stream that floods frames', async () => {
    const peer = TestPeer.create();
    const url = `${relay.wsUrl}/api/v1/stream?address=${peer.address}`;
    const open = [await StreamClient.open(url), await StreamClient.open(url)];
    await expect(StreamClient.open(url)).rejects.toThrow(/429/);

    const flooding = open[0] as StreamClient;
    for (let i = 0; i < 40 && flooding.ws.readyState === flooding.ws.OPEN; i++)
      flooding.ws.send(JSON.stringify({ type: 'ack', message_ids: [randomUUID()] }));
    expect(await flooding.closed).toBe(4429);
    const refusals = flooding.frames.filter((f) => f.type === 'error');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0]).toMatchObject({ problem: { code: 'rate_limited' } });
    expect(flooding.frames.filter((f) => f.type === 'ack_result').length).toBeLessThanOrEqual(6);
    await (open[1] as StreamClient).close();
  });
});

// A recipient whose socket stops reading: the relay stops writing once the socket's buffer is
// full, keeps a bounded queue, and closes the stream as too slow rather than hold messages in
// memory; nothing is lost, because nothing was acknowledged.
describe('a stream that stops reading', () => {
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay('slow_stream', {
      RELAY_RATE_SENDER_PER_SECOND: '100000',
      RELAY_RATE_SENDER_BURST: '100000',
      RELAY_RATE_RECIPIENT_PER_SECOND: '100000',
      RELAY_RATE_RECIPIENT_BURST: '100000',
      // Loopback sockets buffer tens of MB in the kernel before the relay's own buffer fills; a
      // small queue keeps the test to 1,300 messages.
      RELAY_STREAM_QUEUE_MAX: '20',
    });
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  it('is closed with 1013 once RELAY_STREAM_QUEUE_MAX messages wait for it, and every message stays in the mailbox', async () => {
    const recipient = TestPeer.create();
    const sender = TestPeer.create();
    const stream = await StreamClient.open(`${relay.wsUrl}/api/v1/stream?address=${recipient.address}`);
    stream.ws.pause(); // stop reading: TCP pushes back on the relay
    const content = 'x'.repeat(48 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 1300; i += 50) {
      const messages = await Promise.all(Array.from({ length: 50 }, () => sender.message(recipient.address, content)));
      ids.push(...messages.map((m) => m['message_id'] as string));
      const sent = await call<{ results: { status: unknown }[] }>(
        relay.baseUrl,
        'POST',
        '/api/v1/message/relay/batch',
        { messages },
      );
      expect(sent.body.results.filter((r) => r.status !== 'accepted')).toEqual([]);
    }
    stream.ws.resume();
    expect(await stream.closed).toBe(1013);
    const received = stream.messages().length;
    expect(received).toBeLessThan(ids.length);

    let pending = 0;
    let after: string | undefined;
    do {
      const page = await call<{ messages: unknown[]; next_cursor: string | null }>(
        relay.baseUrl,
        'GET',
        `/api/v1/messages?address=${recipient.address}&limit=500${after ? `&after=${after}` : ''}`,
      );
      pending += page.body.messages.length;
      after = page.body.next_cursor ?? undefined;
    } while (after);
    expect(pending).toBe(ids.length);
  }, 180_000);
});
