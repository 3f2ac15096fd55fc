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
  missing_api_key: { status: 401, title: 'No API key was sent', retriable: false },
  invalid_api_key: { status: 401, title: 'The API key is unknown or revoked', retriable: false },
  missing_token: { status: 401, title: 'This call needs a bearer token for the address', retriable: false },
  invalid_token: { status: 401, title: 'The bearer token is invalid or expired', retriable: false },
  invalid_nonce: { status: 401, title: 'The challenge nonce is unknown, used or expired', retriable: false },
  insufficient_scope: { status: 403, title: 'The API key does not allow this call', retriable: false },
  address_mismatch: { status: 403, title: 'The token is for another address', retriable: false },
  peer_not_found: { status: 404, title: 'No peer is registered at that address', retriable: false },
  not_found: { status: 404, title: 'No such endpoint', retriable: false },
  message_not_found: { status: 404, title: 'No such message in the read model', retriable: false },
  not_anchored_yet: { status: 409, title: 'The message is not anchored on chain yet; retry later', retriable: true },
  message_id_conflict: { status: 409, title: 'That message id was used for other content', retriable: false },
  registration_superseded: {
    status: 409,
    title: 'A registration of this peer signed later is on record',
    retriable: false,
  },
  payload_too_large: { status: 413, title: 'The body is larger than allowed', retriable: false },
  unsupported_media_type: { status: 415, title: 'The body must be application/json', retriable: false },
  too_many_streams: {
    status: 429,
    title: 'The address has as many streams open on this node as allowed',
    retriable: true,
  },
  rate_limited: { status: 429, title: 'Too many requests; retry after the given delay', retriable: true },
  overloaded: { status: 503, title: 'The relay is at capacity; retry after the given delay', retriable: true },
  dependency_unavailable: { status: 503, title: 'A service the relay needs does not answer', retriable: true },
  schema_rejected: { status: 500, title: 'The schema registry refused an event schema', retriable: false },
  internal_error: { status: 500, title: 'The relay failed unexpectedly', retriable: true },
} as const satisfies Record<string, { status: number; title: string; retriable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;
