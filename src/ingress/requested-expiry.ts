import { invalid, type Fields } from './validation.js';

// RFC 3339 date-time, with seconds and an explicit offset: a time without a zone would be read in the server's.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

/**
 * The optional `expires_at` of a relay request, in milliseconds since the epoch: undefined when
 * absent, a 400 `invalid_request` when it is not an RFC 3339 time or is not after `now`.
 */
export function requestedExpiry(body: Fields, now: number): number | undefined {
  const value = body['expires_at'];
  if (value === undefined || value === null) return undefined;
  const at = typeof value === 'string' && RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(at))
    throw invalid('expires_at', 'expires_at must be an RFC 3339 time with a time zone, like 2026-01-01T00:00:00Z.');
  if (at <= now) throw invalid('expires_at', 'expires_at must be in the future.');
  return at;
}
