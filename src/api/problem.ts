import { Type, type Static } from '@sinclair/typebox';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * An RFC 9457 problem document with the relay's stable `code` (docs/reference/errors.md).
 * Extension members (`field`, `retry_after`, `limit`, `message_id`, `signed_at`) may follow.
 * `code` is a string here because a newer relay may add codes; each operation's responses in the
 * OpenAPI document narrow it to the codes that operation can answer with.
 */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'urn:relay:error:<code>' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String({ description: 'A sentence a client can act on.' }),
    code: Type.String({ pattern: '^[a-z][a-z0-9_]*$' }),
    field: Type.Optional(Type.String({ description: 'The request member that failed (invalid_request).' })),
    retry_after: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Seconds to wait before retrying (429, 503).' }),
    ),
    limit: Type.Optional(Type.Integer({ description: 'The body limit in bytes (payload_too_large).' })),
    message_id: Type.Optional(
      Type.String({ description: 'The message concerned (message_id_conflict, rate_limited).' }),
    ),
    signed_at: Type.Optional(
      Type.String({ description: 'The iat of the registration on record (registration_superseded).' }),
    ),
  },
  { additionalProperties: true, $id: 'Problem' },
);

/** A problem document as the relay sends it; extension members beyond the named ones may be present. */
export type Problem = Static<typeof Problem> & { readonly [extension: string]: unknown };
