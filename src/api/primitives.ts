import { FormatRegistry, Type } from '@sinclair/typebox';
import type { PublicJwk as PublicJwkType } from '../crypto/address.js';

// The building blocks of the wire contract. Each bound is written once, here; the request
// validator, the TypeScript types and the OpenAPI document all read it from these schemas.
// A `description` that starts in lower case finishes the sentence "<field> must be ...", so the
// same words document a field and explain a request that breaks it.

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const ADDRESS_PATTERN = '^[A-Za-z0-9_-]{43}$';
const BASE64URL_PATTERN = '^[A-Za-z0-9_-]+$';

export const Address = Type.String({
  minLength: 1,
  maxLength: 43,
  pattern: ADDRESS_PATTERN,
  description: 'an address: 43 base64url characters (a JWK SHA-256 thumbprint)',
});

export const Uuid = Type.String({ minLength: 1, maxLength: 36, pattern: UUID_PATTERN, description: 'a UUID' });

/** A Kafka offset: a decimal string, because offsets can exceed 2^53. */
export const Offset = Type.String({ pattern: '^\\d{1,19}$', description: 'a Kafka offset as a decimal string' });

/** ISO 8601 in UTC with milliseconds, as the relay writes every time. */
export const Timestamp = Type.String({ format: 'date-time', description: 'an ISO 8601 time in UTC' });

export const Base64url = (maxLength: number) =>
  Type.String({ minLength: 1, maxLength, pattern: BASE64URL_PATTERN, description: 'base64url' });

/**
 * Log positions of a write, as `topic:partition:offset` entries joined by commas; empty when the
 * write wrote nothing (docs/reference/api.md, Reading your own writes).
 */
export const ConsistencyToken = Type.String({
  maxLength: 64 * 30,
  pattern: '^((mailbox|peers):\\d{1,6}:\\d{1,19}(,(mailbox|peers):\\d{1,6}:\\d{1,19})*)?$',
  description: 'a consistency_token a write returned, such as "mailbox:3:1042"',
});

/** A mailbox or discovery cursor: opaque base64url, at most 200 characters. */
export const Cursor = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'a next_cursor this endpoint returned',
});

/** A public JSON Web Key; the relay types only the members it reads, and passes the rest on. */
export const PublicJwk = Type.Unsafe<PublicJwkType>(
  Type.Object({ kty: Type.String() }, { additionalProperties: true, description: 'a public JWK' }),
);

export type PublicJwk = PublicJwkType;

/** A JSON object whose members the relay does not interpret (connection_info). */
export const OpaqueObject = Type.Record(Type.String(), Type.Unknown(), { description: 'a JSON object' });

// The compiled checker knows no formats of its own; this is the one the contract uses.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;
if (!FormatRegistry.Has('date-time'))
  FormatRegistry.Set('date-time', (value) => ISO_TIME.test(value) && Number.isFinite(Date.parse(value)));
