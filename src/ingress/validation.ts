import { AppError } from '../errors/app-error.js';

/**
 * What request validation the schemas in src/api do not do: query parameters arrive as strings,
 * so their numbers are read here (with the bounds the schemas give). Each failure is a 400
 * `invalid_request` naming the field and the bound.
 */

export const invalid = (field: string, detail: string) =>
  new AppError('invalid_request', detail, { extensions: { field } });

export type Fields = Readonly<Record<string, unknown>>;

/** An optional integer query parameter within bounds. */
export function integerParam(query: Fields, field: string, min: number, max: number, fallback: number): number {
  const raw = query[field];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max)
    throw invalid(field, `${field} must be a whole number from ${min} to ${max}.`);
  return value;
}

/** An optional single string query parameter. */
export function optionalParam(query: Fields, field: string, maxLength = 200): string | undefined {
  const raw = query[field];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || raw.length > maxLength)
    throw invalid(field, `${field} must be one string of at most ${maxLength} characters.`);
  return raw;
}
