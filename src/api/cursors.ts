import { AppError } from '../errors/app-error.js';

/** The largest Postgres `bigint`, which is also the largest Kafka offset. */
export const MAX_INT64 = 2n ** 63n - 1n;
const MAX_PARTITION = 999_999n;

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

/** A mailbox cursor: the log position (partition, offset) of a message, base64url of `partition:offset`. */
export const encodeCursor = (partition: number, offset: string): string =>
  Buffer.from(`${partition}:${offset}`).toString('base64url');

/** The log position (partition, offset) a mailbox cursor names; a cursor this relay did not make is a 400 naming `field`. */
export function decodeCursor(cursor: string, field = 'after'): [number, string] {
  const [partition, offset, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  const p = decimalWithin(partition ?? '', MAX_PARTITION);
  const o = decimalWithin(offset ?? '', MAX_INT64);
  if (p === undefined || o === undefined || extra !== undefined) {
    throw new AppError('invalid_request', `${field} must be a next_cursor returned by this endpoint.`, {
      extensions: { field },
    });
  }
  return [Number(p), o.toString()];
}

/** A discovery cursor: how many online peers the pages before it covered. */
export const encodeDiscoverCursor = (offset: number): string => Buffer.from(String(offset)).toString('base64url');

/** The offset a discovery cursor names, at most `max`; anything else is a 400 naming `cursor`. */
export function decodeDiscoverCursor(cursor: string, max: bigint): number {
  const decoded = decimalWithin(Buffer.from(cursor, 'base64url').toString('utf8'), max);
  if (decoded === undefined)
    throw new AppError('invalid_request', 'cursor must be a next_cursor this endpoint returned.', {
      extensions: { field: 'cursor' },
    });
  return Number(decoded);
}
