import kafkajs from 'kafkajs';
import WebSocket from 'ws';
import { expiryServices } from '../../src/app/roles.js';
import { runServices } from '../../src/lifecycle/service.js';
import { prepareDependencies } from '../../src/app/setup.js';
import type { Pool } from '../../src/postgres/pool.js';
import { RebuildError, rebuildReadModel } from '../../src/replay/rebuild.js';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';
import { readTopic } from '../helpers/topic-reader.js';

const PURGE_AFTER_SECONDS = 2;
const DAY_MS = 86_400_000;

interface MessageRow {
  id: string;
  delivered: boolean;
  expired: boolean;
  accepted_at: Date;
  expires_at: Date;
  expired_at: Date | null;
}

/** An expiry role of its own (its producer and expirer), as `relay expiry` runs it. */
function startExpiry(relay: RunningRelay): { stop(): Promise<void> } {
  const controller = new AbortController();
  const running = runServices(expiryServices(relay.ctx), controller.signal, relay.ctx.log);
  running.catch(() => undefined);
  return {
    async stop() {
      controller.abort();
      await running;
    },
  };
}

/** The stream's frames until the one `until` picks, from a fresh connection's backlog. */
async function backlogUntil(
  url: string,
  until: (frame: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>[]> {
  const ws = new WebSocket(url);
  const frames: Record<string, unknown>[] = [];
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the awaited backlog frame did not come')), 15_000);
      ws.on('message', (data) => {
        const frame = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
        frames.push(frame);
        if (until(frame)) {
          clearTimeout(timer);
          resolve(frames);
        }
      });
      ws.once('error', reject);
    });
  } finally {
    ws.close();
  }
}

/** The read model's rows, in a stable order; checkpoints without their wall-clock updated_at. */
async function readModel(pool: Pool) {
  const rows = async (sql: string) => (await pool.query<Record<string, unknown>>(sql)).rows;
  return {
    messages: await rows('SELECT * FROM messages ORDER BY id'),
    peers: await rows('SELECT * FROM peers ORDER BY address'),
    checkpoints: await rows(
      'SELECT projection, topic, partition, next_offset FROM projection_checkpoints ORDER BY projection, topic, partition',
    ),
  };
}

// Expiry end to end: a message with a 2-second life leaves fetch and stream as soon as it is due,
// the expiry role writes exactly one MessageExpired for it (two expiry processes, then a restart),
// the purge deletes settled rows, and a rebuild from the log ends with the live read model.
describe('message expiry and retention', () => {
  let relay: RunningRelay;
  /** The one message left in the read model after the second test. */
  let lasting: string;
  const alice = TestPeer.create('EdDSA');
  const bob = TestPeer.create('ES256');

  beforeAll(async () => {
    relay = await startRelay('expiry', { RELAY_PURGE_AFTER_SECONDS: String(PURGE_AFTER_SECONDS) });
  }, 90_000);

  afterAll(async () => {
    await relay?.stop();
  });

  const rowOf = async (id: string) =>
    (await relay.ctx.pool.query<MessageRow>('SELECT * FROM messages WHERE id = $1', [id])).rows[0];
  const projected = (id: string) => eventually(() => rowOf(id), 15_000, `message ${id} projected`);
  const fetchIds = async (address: string) =>
    (
      await call<{ messages: { message_id: string; expires_at: string }[] }>(
        relay.baseUrl,
        'GET',
        `/api/v1/messages?address=${address}&limit=100`,
      )
    ).body.messages;
  const expiredEvents = async (id: string) =>
    (await readTopic(relay.ctx, relay.ctx.topics.mailbox)).filter(
      (e) => e.event.type === 'MessageExpired' && e.event.data.message_id === id,
    );
  const send = async (message: Record<string, string>, extra: Record<string, unknown> = {}) => {
    const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', { ...message, ...extra });
    expect(answer.status).toBe(202);
    return message['message_id'] as string;
  };

  it('refuses an expires_at that is malformed or past, and caps one beyond the configured lifetime', async () => {
    for (const expires_at of ['tomorrow', '2026-01-01T00:00:00', new Date(Date.now() - 1000).toISOString(), 12]) {
      const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', {
        ...(await alice.message(bob.address)),
        expires_at,
      });
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ code: 'invalid_request', field: 'expires_at' });
    }
    const far = await send(await alice.message(bob.address), {
      expires_at: new Date(Date.now() + 90 * DAY_MS).toISOString(),
    });
    const plain = await send(await alice.message(bob.address));
    for (const id of [far, plain]) {
      const row = await projected(id);
      expect(row.expires_at.getTime() - row.accepted_at.getTime()).toBe(30 * DAY_MS);
    }
    const sent = (await readTopic(relay.ctx, relay.ctx.topics.mailbox)).find(
      (e) => e.event.type === 'MessageSent' && e.event.data.message_id === plain,
    );
    expect(sent?.event.data).toMatchObject({ expires_at: (await projected(plain)).expires_at.getTime() });
    // Both are settled here so the last test's read model holds only what it sends.
    const ack = await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', {
      address: bob.address,
      message_ids: [far, plain],
    });
    expect(ack.status).toBe(200);
  });

  it('drops a due message from fetch and stream at once, writes one MessageExpired for it, purges it, and a rebuild agrees', async () => {
    const shortLived = await send(await alice.message(bob.address, 'short-lived'), {
      expires_at: new Date(Date.now() + 2000).toISOString(),
    });
    lasting = await send(await alice.message(bob.address, 'lasting'));
    const acked = await send(await alice.message(bob.address, 'acknowledged'));
    const row = await projected(shortLived);
    await projected(lasting);
    await projected(acked);
    expect(row.expires_at.getTime() - row.accepted_at.getTime()).toBeLessThanOrEqual(2000);
    expect(
      (await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', { address: bob.address, message_ids: [acked] }))
        .status,
    ).toBe(200);

    // Due, and no expiry role runs yet: the read model has not been told, and the reads leave it out anyway.
    await eventually(
      async () => (Date.now() > row.expires_at.getTime() + 50 ? true : undefined),
      10_000,
      'the short-lived message to be due',
    );
    expect(await rowOf(shortLived)).toMatchObject({ expired: false, delivered: false });
    const listed = await fetchIds(bob.address);
    expect(listed.map((m) => m.message_id)).toContain(lasting);
    expect(listed.map((m) => m.message_id)).not.toContain(shortLived);
    expect(listed.find((m) => m.message_id === lasting)?.expires_at).toBe(
      (await rowOf(lasting))?.expires_at.toISOString(),
    );
    // The backlog is in log order, and the short-lived message was accepted before the lasting one.
    const frames = await backlogUntil(
      `${relay.wsUrl}/api/v1/stream?address=${bob.address}`,
      (f) => f['message_id'] === lasting,
    );
    expect(frames.filter((f) => f['type'] === 'message').map((f) => f['message_id'])).not.toContain(shortLived);

    // Two expiry processes: one MessageExpired, the row settled, then purged with the acknowledged one.
    const first = startExpiry(relay);
    const second = startExpiry(relay);
    try {
      const [expiredEvent] = await eventually(
        async () => {
          const found = await expiredEvents(shortLived);
          return found.length > 0 ? found : undefined;
        },
        30_000,
        'the MessageExpired on the mailbox topic',
      );
      expect(expiredEvent?.key).toBe(bob.address);
      expect(expiredEvent?.event.data).toMatchObject({ message_id: shortLived, to_address: bob.address });
      await eventually(
        async () => ((await rowOf(shortLived)) === undefined && (await rowOf(acked)) === undefined ? true : undefined),
        30_000,
        'the purge of settled rows',
      );
      expect(await rowOf(lasting)).toMatchObject({ delivered: false, expired: false });

      // A restart: both stop, a new one takes over (after waiting for the projector) and expires only what is due since.
      await Promise.all([first.stop(), second.stop()]);
      const third = startExpiry(relay);
      try {
        const later = await send(await alice.message(bob.address, 'later'), {
          expires_at: new Date(Date.now() + 1000).toISOString(),
        });
        await eventually(
          async () => ((await expiredEvents(later)).length > 0 ? true : undefined),
          30_000,
          'the later MessageExpired',
        );
        await eventually(
          async () => ((await rowOf(later)) === undefined ? true : undefined),
          30_000,
          'the purge of the later message',
        );
        expect(await expiredEvents(later)).toHaveLength(1);
        expect(await expiredEvents(shortLived)).toHaveLength(1);
      } finally {
        await third.stop();
      }
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }

    // The live model lost the settled rows to the purge; a rebuild replays them from the log and must leave them out too.
    const live = await readModel(relay.ctx.pool);
    expect(live.messages.map((m) => m['id'])).toEqual([lasting]);
    const result = await rebuildReadModel(relay.ctx);
    expect(result.events).toBeGreaterThan(live.messages.length);
    expect(await readModel(relay.ctx.pool)).toEqual(live);
  }, 180_000);

  it("sets the topics' retention from the configuration, on new topics and on existing ones, keeping their other settings", async () => {
    const admin = await relay.ctx.kafkaAdmin();
    const describe = async (topic: string) => {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'segment.ms'] },
        ],
      });
      return Object.fromEntries((resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
    };
    const { mailbox, peers, dlq } = relay.ctx.topics;
    expect(await describe(mailbox)).toMatchObject({ 'retention.ms': '3888000000' });
    expect(await describe(dlq)).toMatchObject({ 'retention.ms': '3888000000' });
    expect(await describe(peers)).toMatchObject({ 'retention.ms': '-1' });

    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: mailbox,
          configEntries: [
            { name: 'retention.ms', value: '1000' },
            { name: 'segment.ms', value: '7200000' },
          ],
        },
      ],
    });
    expect(await describe(mailbox)).toMatchObject({ 'retention.ms': '1000', 'segment.ms': '7200000' });
    await prepareDependencies(relay.ctx);
    expect(await describe(mailbox)).toMatchObject({ 'retention.ms': '3888000000', 'segment.ms': '7200000' });
  });

  it('rebuilds from a mailbox topic that retention has truncated, unless its retention is shorter than a row lives', async () => {
    // What retention deletes first: the records before the lasting message, all of purged messages.
    const row = (
      await relay.ctx.pool.query<{ kafka_partition: number; kafka_offset: string }>(
        'SELECT kafka_partition, kafka_offset FROM messages WHERE id = $1',
        [lasting],
      )
    ).rows[0];
    expect(row).toBeDefined();
    expect(Number(row?.kafka_offset)).toBeGreaterThan(0);
    const admin = await relay.ctx.kafkaAdmin();
    await admin.deleteTopicRecords({
      topic: relay.ctx.topics.mailbox,
      partitions: [{ partition: row?.kafka_partition ?? 0, offset: row?.kafka_offset ?? '0' }],
    });
    const live = await readModel(relay.ctx.pool);
    await rebuildReadModel(relay.ctx);
    expect(await readModel(relay.ctx.pool)).toEqual(live);

    // A retention shorter than a message's lifetime plus the purge delay may have deleted rows the live model holds.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: relay.ctx.topics.mailbox,
          configEntries: [{ name: 'retention.ms', value: String(30 * DAY_MS) }],
        },
      ],
    });
    try {
      await expect(rebuildReadModel(relay.ctx)).rejects.toThrow(RebuildError);
      await expect(rebuildReadModel(relay.ctx)).rejects.toThrow(/no longer holds its oldest records/);
    } finally {
      await prepareDependencies(relay.ctx);
    }
    expect(await readModel(relay.ctx.pool)).toEqual(live);
  }, 120_000);
});
