import { ADDRESS_PATTERN } from '../crypto/address.js';
import { UsageError } from '../errors/usage-error.js';
import { EVENT_TYPES, isEventType, type EventType, type RelayEvent } from '../events/types.js';

/**
 * Which decoded events a replay keeps. Every part is optional; an event is kept when it passes
 * every part that is set. Pure: the reader applies it after decoding.
 */
export interface ReplayFilter {
  /** Keep events keyed by one of these addresses, or naming one in to_address, from_address or address. */
  readonly addresses?: ReadonlySet<string>;
  readonly types?: ReadonlySet<EventType>;
  /** Keep events whose occurred_at is at or after this (ms since the epoch). */
  readonly since?: number;
  /** Keep events whose occurred_at is before this (ms since the epoch). */
  readonly until?: number;
}

/** The event fields that name an address: the recipient, the sender, or the peer itself. */
const ADDRESS_FIELDS = ['to_address', 'from_address', 'address'] as const;

export function matchesFilter(filter: ReplayFilter, key: string | null, event: RelayEvent): boolean {
  if (filter.types && !filter.types.has(event.type)) return false;
  const occurredAt = event.data.occurred_at;
  if (filter.since !== undefined && occurredAt < filter.since) return false;
  if (filter.until !== undefined && occurredAt >= filter.until) return false;
  if (filter.addresses) {
    const data = event.data as unknown as Readonly<Record<string, unknown>>;
    const named =
      (key !== null && filter.addresses.has(key)) ||
      ADDRESS_FIELDS.some((field) => {
        const value = data[field];
        return typeof value === 'string' && filter.addresses?.has(value) === true;
      });
    if (!named) return false;
  }
  return true;
}

/** Thrown for an argument a person typed wrong; the message is one sentence they can act on. */
export { UsageError };

const UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * A point in time as analysts type it: an ISO 8601 date or time (`2025-01-31`,
 * `2025-01-31T12:00:00Z`; without a zone it is UTC), milliseconds since the epoch, `now`, or an
 * age such as `90s`, `15m`, `2h`, `7d` (that long before `now`).
 */
export function parseTime(raw: string, option: string, now: number = Date.now()): number {
  const text = raw.trim();
  if (text === 'now') return now;
  const age = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text);
  if (age) return now - Math.round(Number(age[1]) * (UNITS_MS[age[2] as string] ?? 0));
  if (/^\d{10,}$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(text)) {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) || text.length === 10 ? text : `${text}Z`;
    const at = Date.parse(zoned.replace(' ', 'T'));
    if (Number.isFinite(at)) return at;
  }
  throw new UsageError(
    `${option} must be an ISO 8601 time (2025-01-31T12:00:00Z), epoch milliseconds, "now" or an age like 15m, 2h, 7d; not "${raw}"`,
  );
}

/** A peer address as the relay derives it: 43 base64url characters. */
export function parseAddress(raw: string): string {
  if (!ADDRESS_PATTERN.test(raw))
    throw new UsageError(`--address must be a peer address (43 base64url characters), not "${raw}"`);
  return raw;
}

export function parseEventType(raw: string): EventType {
  if (isEventType(raw)) return raw;
  throw new UsageError(`--type must be one of ${EVENT_TYPES.join(', ')}; not "${raw}"`);
}
