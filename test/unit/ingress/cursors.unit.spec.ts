import { AppError } from '../../../src/errors/app-error.js';
import type { EventPublisher } from '../../../src/kafka/event-publisher.js';
import type { SignatureVerifier } from '../../../src/crypto/signatures.js';
import { MailboxReader } from '../../../src/ingress/mailbox-reader.js';
import { PeerDirectory } from '../../../src/ingress/peer-directory.js';
import type { Pool } from '../../../src/postgres/pool.js';
import type { PresenceStore } from '../../../src/presence/presence-store.js';
import type { ReadConsistency } from '../../../src/ingress/read-consistency.js';

// A cursor is checked before anything is asked of Postgres or Redis: these stand-ins record that
// they were reached, so a cursor that slips through validation fails the test.
const ADDRESS = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const cursorOf = (text: string) => Buffer.from(text).toString('base64url');

let reached: string[] = [];
const pool = { query: async () => (reached.push('postgres'), { rows: [] }) } as unknown as Pool;
const presence = {
  discover: async () => (reached.push('redis'), { peers: [], next: undefined }),
} as unknown as PresenceStore;
const mailbox = new MailboxReader(pool);
const directory = new PeerDirectory({
  verifier: {} as SignatureVerifier,
  events: {} as EventPublisher,
  pool,
  presence,
  consistency: {} as ReadConsistency,
});

async function expectInvalidCursor(run: Promise<unknown>, field: string): Promise<void> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe('invalid_request');
  expect((error as AppError).status).toBe(400);
  expect((error as AppError).extensions['field']).toBe(field);
  expect(reached).toEqual([]);
}

beforeEach(() => {
  reached = [];
});

describe('mailbox cursors (after)', () => {
  it.each([
    ['an offset beyond a 64-bit integer', '0:9999999999999999999'],
    ['an offset one past the largest bigint', '0:9223372036854775808'],
    ['a partition beyond a 32-bit integer', '99999999999:1'],
    ['no offset', '0:'],
    ['a sign', '0:-1'],
    ['an exponent', '0:1e3'],
    ['text', 'anything'],
  ])('refuses %s with 400 before querying', async (_label, text) => {
    await expectInvalidCursor(mailbox.undelivered(ADDRESS, cursorOf(text), 10), 'after');
  });

  it('accepts the largest bigint offset and queries with it', async () => {
    await mailbox.undelivered(ADDRESS, cursorOf('5:9223372036854775807'), 10);
    expect(reached).toEqual(['postgres']);
  });
});

describe('discover cursors', () => {
  it.each([
    ['an exponent', '1e300'],
    ['a huge integer', '9'.repeat(30)],
    ['a fraction', '1.5'],
    ['a sign', '-1'],
    ['hexadecimal', '0x10'],
    ['spaces', ' 7 '],
    ['nothing', ''],
    ['Infinity', 'Infinity'],
  ])('refuses %s with 400 before asking Redis', async (_label, text) => {
    await expectInvalidCursor(directory.discover(ADDRESS, 10, cursorOf(text)), 'cursor');
  });

  it('accepts an offset it could have returned', async () => {
    await directory.discover(ADDRESS, 10, cursorOf('150'));
    expect(reached).toEqual(['redis']);
  });
});
