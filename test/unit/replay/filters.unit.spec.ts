import type { RelayEvent } from '../../../src/events/types.js';
import { matchesFilter, parseAddress, parseEventType, parseTime, UsageError } from '../../../src/replay/filters.js';

const alice = 'A'.repeat(43);
const bob = 'B'.repeat(43);
const carol = 'C'.repeat(43);

const sent = (from: string, to: string, at: number): RelayEvent => ({
  type: 'MessageSent',
  data: {
    event_id: 'e',
    occurred_at: at,
    message_id: 'm',
    from_address: from,
    to_address: to,
    message_type: 't',
    encrypted_content: 'c',
    content_sha256: 'h',
    signature: 's',
    node_id: 'n',
  },
});
const presence = (address: string, at: number): RelayEvent => ({
  type: 'PeerPresenceChanged',
  data: { event_id: 'e', occurred_at: at, address, online: true, node_id: 'n' },
});

describe('matchesFilter', () => {
  it('keeps everything with an empty filter', () => {
    expect(matchesFilter({}, null, sent(alice, bob, 1))).toBe(true);
  });

  it('matches an address by key, to_address, from_address or address', () => {
    const filter = { addresses: new Set([alice]) };
    expect(matchesFilter(filter, alice, sent(bob, carol, 1))).toBe(true); // key
    expect(matchesFilter(filter, bob, sent(carol, alice, 1))).toBe(true); // to_address
    expect(matchesFilter(filter, bob, sent(alice, bob, 1))).toBe(true); // from_address
    expect(matchesFilter(filter, null, presence(alice, 1))).toBe(true); // address
    expect(matchesFilter(filter, bob, sent(carol, bob, 1))).toBe(false);
    expect(matchesFilter(filter, null, presence(bob, 1))).toBe(false);
  });

  it('keeps [since, until) of occurred_at', () => {
    const filter = { since: 100, until: 200 };
    expect(matchesFilter(filter, null, sent(alice, bob, 99))).toBe(false);
    expect(matchesFilter(filter, null, sent(alice, bob, 100))).toBe(true);
    expect(matchesFilter(filter, null, sent(alice, bob, 199))).toBe(true);
    expect(matchesFilter(filter, null, sent(alice, bob, 200))).toBe(false);
  });

  it('filters by event type, and needs every part to pass', () => {
    const filter = { types: new Set(['PeerPresenceChanged'] as const), addresses: new Set([alice]) };
    expect(matchesFilter(filter, alice, sent(alice, bob, 1))).toBe(false);
    expect(matchesFilter(filter, null, presence(alice, 1))).toBe(true);
    expect(matchesFilter(filter, null, presence(bob, 1))).toBe(false);
  });
});

describe('parseTime', () => {
  const now = Date.parse('2025-03-01T12:00:00Z');

  it.each([
    ['2025-01-31T12:00:00Z', Date.parse('2025-01-31T12:00:00Z')],
    ['2025-01-31T12:00:00', Date.parse('2025-01-31T12:00:00Z')],
    ['2025-01-31T12:00:00.250+02:00', Date.parse('2025-01-31T10:00:00.250Z')],
    ['2025-01-31', Date.parse('2025-01-31T00:00:00Z')],
    ['2025-01-31 08:30', Date.parse('2025-01-31T08:30:00Z')],
    ['1738324800000', 1738324800000],
    ['now', now],
    ['90s', now - 90_000],
    ['15m', now - 900_000],
    ['2h', now - 7_200_000],
    ['7d', now - 7 * 86_400_000],
    ['1.5h', now - 5_400_000],
  ])('reads %s', (raw, expected) => {
    expect(parseTime(raw, '--since', now)).toBe(expected);
  });

  it.each(['yesterday', '12', '2025-13-45', '-5m', ''])('refuses %p with a usage error naming the option', (raw) => {
    expect(() => parseTime(raw, '--until', now)).toThrow(UsageError);
    expect(() => parseTime(raw, '--until', now)).toThrow(/^--until must be/);
  });
});

describe('parseAddress and parseEventType', () => {
  it('accepts 43 base64url characters and the five event types', () => {
    expect(parseAddress(`${'a'.repeat(41)}-_`)).toHaveLength(43);
    expect(parseEventType('MessageDelivered')).toBe('MessageDelivered');
  });

  it('refuses anything else with one line that says what is expected', () => {
    expect(() => parseAddress('alice')).toThrow(
      '--address must be a peer address (43 base64url characters), not "alice"',
    );
    expect(() => parseEventType('MessageRead')).toThrow(/^--type must be one of .* not "MessageRead"$/);
  });
});
