import { AppError } from '../errors/app-error.js';
import { ADDRESS_PATTERN } from '../crypto/address.js';

/** Request validation: each failure is a 400 `invalid_request` naming the field and the bound. */

export const invalid = (field: string, detail: string) => new AppError('invalid_request', detail, { extensions: { field } });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type Fields = Readonly<Record<string, unknown>>;

export function objectAt(value: unknown, field: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, `${field} must be a JSON object.`);
  return value as Fields;
}

export function stringAt(
  fields: Fields,
  field: string,
  bounds: { maxLength?: number; maxBytes?: number; pattern?: RegExp; shape?: string } = {},
): string {
  const value = fields[field];
  if (value === undefined || value === null) throw invalid(field, `${field} is required.`);
  if (typeof value !== 'string') throw invalid(field, `${field} must be a string.`);
  if (value.length === 0) throw invalid(field, `${field} must not be empty.`);
  if (bounds.maxLength !== undefined && value.length > bounds.maxLength) {
    throw invalid(field, `${field} must be at most ${bounds.maxLength} characters.`);
  }
  if (bounds.maxBytes !== undefined && Buffer.byteLength(value, 'utf8') > bounds.maxBytes) {
    throw invalid(field, `${field} must be at most ${bounds.maxBytes} bytes of UTF-8.`);
  }
  if (bounds.pattern && !bounds.pattern.test(value)) throw invalid(field, `${field} must be ${bounds.shape ?? `like ${String(bounds.pattern)}`}.`);
  return value;
}

export const uuidAt = (fields: Fields, field: string): string =>
  stringAt(fields, field, { maxLength: 36, pattern: UUID, shape: 'a UUID' }).toLowerCase();

export const addressAt = (fields: Fields, field: string): string =>
  stringAt(fields, field, { maxLength: 43, pattern: ADDRESS_PATTERN, shape: 'an address: 43 base64url characters (a JWK SHA-256 thumbprint)' });

export function arrayAt(fields: Fields, field: string, maxItems: number): readonly unknown[] {
  const value = fields[field];
  if (!Array.isArray(value)) throw invalid(field, `${field} must be an array.`);
  if (value.length === 0) throw invalid(field, `${field} must not be empty.`);
  if (value.length > maxItems) throw invalid(field, `${field} must hold at most ${maxItems} items.`);
  return value;
}

/** An optional integer query parameter within bounds. */
export function integerParam(query: Fields, field: string, min: number, max: number, fallback: number): number {
  const raw = query[field];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(field, `${field} must be a whole number from ${min} to ${max}.`);
  return value;
}

/**
 * A whole number written as decimal digits only, from 0 to `max`; undefined for anything else (a
 * sign, a fraction, an exponent, hexadecimal, spaces, or more than `max`). Cursors use it, so that
 * a number Postgres or Redis cannot hold is refused here rather than failing there.
 */
export function decimalWithin(text: string, max: bigint): bigint | undefined {
  if (!/^\d{1,20}$/.test(text)) return undefined;
  const value = BigInt(text);
  return value <= max ? value : undefined;
}

/** The largest Postgres `bigint`, which is also the largest Kafka offset. */
export const MAX_INT64 = 2n ** 63n - 1n;

/** An optional single string query parameter. */
export function optionalParam(query: Fields, field: string, maxLength = 200): string | undefined {
  const raw = query[field];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || raw.length > maxLength) throw invalid(field, `${field} must be one string of at most ${maxLength} characters.`);
  return raw;
}

export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
