import { randomUUID } from 'node:crypto';
import type { RelayEvent } from '../../../src/events/types.js';
import { LEGACY_LIFETIME_MS } from '../../../src/events/lifetime.js';
import { purgeSettled, purgeSettledAtOnce } from '../../../src/expiry/purge.js';
import type { ConsumedRecord } from '../../../src/kafka/consumer-service.js';
import { createLogger } from '../../../src/observability/logger.js';
import { loadMigrations, migrate } from '../../../src/postgres/migrate.js';
import { createPool, type Pool } from '../../../src/postgres/pool.js';
import { postgresProjector } from '../../../src/projections/postgres-projector.js';
import { testConfig } from '../../helpers/context.js';

// The projector's writer and the purge against real PostgreSQL: a message is settled once, by its
// first MessageDelivered or MessageExpired, across batches too; the purge deletes only settled
// rows past the delay, a batch at a time; migration 003 gives old rows what a rebuild would.

const TOPIC = 'relay.mailbox.v1';
const BOB = 'B'.repeat(43);
const log = createLogger('warn', { test: 'settlement' });

interface Row {
  id: string;
  delivered: boolean;
  expired: boolean;
  accepted_at: Date;
  expires_at: Date;
  delivered_at: Date | null;
  expired_at: Date | null;
}

describe('settling and purging messages in PostgreSQL', () => {
  const config = testConfig('settlement');
  const schema = config.postgres.schema;
  let pool: Pool;
  let offset = 0;
  const project = () => postgresProjector(pool);
  const apply = (events: RelayEvent[]) =>
    project()(
      events.map((event): ConsumedRecord => ({
        topic: TOPIC,
        partition: 0,
        offset: String(offset++),
        key: BOB,
        event,
      })),
      TOPIC,
      0,
    );
  const sent = (id: string, at: number, expiresAt?: number): RelayEvent => ({
    type: 'MessageSent',
    data: {
      event_id: randomUUID(),
      occurred_at: at,
      message_id: id,
      from_address: 'A'.repeat(43),
      to_address: BOB,
      message_type: 'text',
      encrypted_content: 'c',
      content_sha256: 'h',
      signature: 's',
      node_id: 'n',
      ...(expiresAt === undefined ? {} : { expires_at: expiresAt }),
    },
  });
  const delivered = (id: string, at: number): RelayEvent => ({
    type: 'MessageDelivered',
    data: { event_id: randomUUID(), occurred_at: at, message_id: id, to_address: BOB, via: 'http' },
  });
  const expired = (id: string, at: number): RelayEvent => ({
    type: 'MessageExpired',
    data: { event_id: randomUUID(), occurred_at: at, message_id: id, to_address: BOB },
  });
  const rowOf = async (id: string) => (await pool.query<Row>('SELECT * FROM messages WHERE id = $1', [id])).rows[0];

  beforeAll(async () => {
    pool = createPool(config);
    await migrate(pool, schema, log);
  });

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it('stores the expiry of the MessageSent, and 30 days for one written before expiry existed', async () => {
    const [withExpiry, legacy] = [randomUUID(), randomUUID()];
    const at = Date.parse('2026-12-01T10:00:00Z');
    await apply([sent(withExpiry, at, at + 2000), sent(legacy, at)]);
    expect((await rowOf(withExpiry))?.expires_at.getTime()).toBe(at + 2000);
    expect((await rowOf(legacy))?.expires_at.getTime()).toBe(at + LEGACY_LIFETIME_MS);
  });

  it('keeps an expired message expired when an acknowledgement and a second expiry follow in later batches', async () => {
    const id = randomUUID();
    await apply([sent(id, 1000, 2000), expired(id, 3000)]);
    await apply([delivered(id, 4000)]);
    await apply([expired(id, 5000)]);
    expect(await rowOf(id)).toMatchObject({
      expired: true,
      delivered: false,
      delivered_at: null,
      expired_at: new Date(3000),
      expires_at: new Date(2000),
    });
  });

  it('keeps a delivered message delivered when an expiry follows in a later batch', async () => {
    const id = randomUUID();
    await apply([sent(id, 1000, 2000), delivered(id, 1500)]);
    await apply([expired(id, 3000)]);
    expect(await rowOf(id)).toMatchObject({
      delivered: true,
      expired: false,
      delivered_at: new Date(1500),
      expired_at: null,
    });
  });

  it('purges only settled rows past the delay, a batch at a time, and a late event brings nothing back', async () => {
    await pool.query('DELETE FROM messages');
    const now = Date.now();
    const [oldDelivered, oldExpired, recentDelivered, pending] = [
      randomUUID(),
      randomUUID(),
      randomUUID(),
      randomUUID(),
    ];
    await apply([
      sent(oldDelivered, now - 60_000),
      sent(oldExpired, now - 60_000, now - 50_000),
      sent(recentDelivered, now - 60_000),
      sent(pending, now - 60_000, now - 50_000), // due, but not yet expired by the role: not settled, so kept
      delivered(oldDelivered, now - 40_000),
      expired(oldExpired, now - 40_000),
      delivered(recentDelivered, now - 1000),
    ]);
    const ids = async () =>
      (await pool.query<{ id: string }>('SELECT id FROM messages ORDER BY id')).rows.map((r) => r.id);

    expect(await purgeSettled(pool, 30, { batch: 1, pauseMs: 0, maxBatches: 1 })).toBe(1);
    expect(await ids()).toHaveLength(3);
    expect(await purgeSettled(pool, 30, { batch: 1, pauseMs: 0, maxBatches: 10 })).toBe(1);
    expect(await ids()).toEqual([recentDelivered, pending].sort());
    expect(await purgeSettled(pool, 30, { batch: 100, pauseMs: 0, maxBatches: 10 })).toBe(0);

    // A late event for a purged message changes nothing; the rebuild's purge takes what the delay allows.
    await apply([delivered(oldExpired, now), expired(oldDelivered, now)]);
    expect(await ids()).toEqual([recentDelivered, pending].sort());
    expect(await purgeSettledAtOnce(pool, 0)).toBe(1);
    expect(await ids()).toEqual([pending]);
  });

  it('migrates rows projected before expiry existed to what a rebuild gives them', async () => {
    const oldSchema = `${schema}_m`;
    const before = (await loadMigrations()).filter((m) => m.version < 3);
    await migrate(pool, oldSchema, log, before);
    const [waiting, gone] = [randomUUID(), randomUUID()];
    const insert = `INSERT INTO "${oldSchema}".messages (id, sender_address, receiver_address, encrypted_content, message_type, timestamp,
                      content_sha256, signature, accepted_at, kafka_partition, kafka_offset, expired, expires_at)
                    VALUES ($1, 'a', 'b', 'c', 'text', now(), 'h', 's', $2, 0, $3, $4, $5)`;
    // Before expiry existed, expires_at held the time a MessageExpired was applied.
    await pool.query(insert, [waiting, '2026-01-01T00:00:00Z', 0, false, null]);
    await pool.query(insert, [gone, '2026-01-01T00:00:00Z', 1, true, '2026-01-05T00:00:00Z']);
    try {
      await migrate(pool, oldSchema, log);
      const { rows } = await pool.query<Row>(`SELECT * FROM "${oldSchema}".messages ORDER BY kafka_offset`);
      expect(rows).toEqual([
        expect.objectContaining({
          id: waiting,
          expires_at: new Date('2026-01-31T00:00:00Z'),
          expired: false,
          expired_at: null,
        }),
        expect.objectContaining({
          id: gone,
          expires_at: new Date('2026-01-31T00:00:00Z'),
          expired: true,
          expired_at: new Date('2026-01-05T00:00:00Z'),
        }),
      ]);
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${oldSchema}" CASCADE`);
    }
  });
});
