/**
 * The closed list of error codes. Each has an HTTP status, a title, and whether the same request
 * may succeed if retried. docs/reference/errors.md documents every code; a unit test keeps the
 * two in step.
 */
export const ERROR_CODES = {
  malformed_json: { status: 400, title: 'The body is not valid JSON', retriable: false },
  invalid_request: { status: 400, title: 'The request does not match the API', retriable: false },
  bad_signature: { status: 401, title: 'The signature does not verify for the claimed address', retriable: false },
  stale_signature: { status: 401, title: 'The signature is too old or from the future', retriable: false },
  peer_not_found: { status: 404, title: 'No peer is registered at that address', retriable: false },
  not_found: { status: 404, title: 'No such endpoint', retriable: false },
  message_id_conflict: { status: 409, title: 'That message id was used for other content', retriable: false },
  payload_too_large: { status: 413, title: 'The body is larger than allowed', retriable: false },
  unsupported_media_type: { status: 415, title: 'The body must be application/json', retriable: false },
  overloaded: { status: 503, title: 'The relay is at capacity; retry after the given delay', retriable: true },
  dependency_unavailable: { status: 503, title: 'A service the relay needs does not answer', retriable: true },
  schema_rejected: { status: 500, title: 'The schema registry refused an event schema', retriable: false },
  internal_error: { status: 500, title: 'The relay failed unexpectedly', retriable: true },
} as const satisfies Record<string, { status: number; title: string; retriable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;
