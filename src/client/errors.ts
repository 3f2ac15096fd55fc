import type { Problem } from '../api/problem.js';

/**
 * The client's two kinds of failure. A `RelayClientError` is the relay (or the network) refusing
 * a request; an `EnvelopeError` is this client refusing something on cryptographic grounds, which
 * no retry can fix. Callers branch on `code`, never on `message`.
 */

/** Codes the client itself assigns when the relay gave no problem document to read one from. */
export const TRANSPORT_ERROR_CODES = {
  network_error: 'The relay could not be reached, or the connection broke before an answer.',
  unexpected_response: 'The relay answered with something that is not the documented JSON.',
  stream_closed: 'The stream closed before the request it carried was answered.',
} as const;

export type TransportErrorCode = keyof typeof TRANSPORT_ERROR_CODES;

/** An RFC 9457 problem document as the relay sends it (docs/reference/errors.md). */
export type ProblemDocument = Problem;

const RETRIABLE_STATUSES = new Set([429, 500, 502, 503, 504]);

/**
 * The relay refused a request, or could not be reached. `code` is the relay's stable error code
 * (`bad_signature`, `overloaded`, ...; the server may add codes, so it is a string) or one of
 * `TRANSPORT_ERROR_CODES`. `status` is 0 when no HTTP answer arrived.
 */
export class RelayClientError extends Error {
  override readonly name = 'RelayClientError';
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  /** The problem document as received, with its extension members (`field`, `limit`, ...). */
  readonly problem: ProblemDocument | undefined;
  /** Seconds the relay asked us to wait (`Retry-After` or `retry_after`), if it said. */
  readonly retryAfter: number | undefined;
  /**
   * Whether sending the same request again may succeed. Recorded here so callers do not guess
   * from statuses: the relay's 5xx and 429 answers and lost connections are retriable, a 4xx is not.
   */
  readonly canRetry: boolean;

  constructor(init: {
    status: number;
    code: string;
    detail: string;
    problem?: ProblemDocument;
    retryAfter?: number;
    canRetry?: boolean;
    cause?: unknown;
  }) {
    super(
      `${init.code} (${init.status}): ${init.detail}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.problem = init.problem;
    this.retryAfter = init.retryAfter;
    this.canRetry = init.canRetry ?? (init.status === 0 || RETRIABLE_STATUSES.has(init.status));
  }

  /** The error for a problem document, from an HTTP answer, a batch item or a stream frame. */
  static fromProblem(problem: ProblemDocument, retryAfterHeader?: string | null): RelayClientError {
    const header = retryAfterHeader ? Number(retryAfterHeader) : NaN;
    const member = problem['retry_after'];
    const retryAfter = Number.isFinite(header) ? header : typeof member === 'number' ? member : undefined;
    return new RelayClientError({
      status: problem.status,
      code: problem.code,
      detail: problem.detail ?? problem.title ?? problem.code,
      problem,
      ...(retryAfter === undefined ? {} : { retryAfter }),
    });
  }
}

/** Whether a parsed JSON value has the members every relay problem document has. */
/** An answer the relay should not have given (a 2xx of the wrong shape). */
export const unexpected = (detail: string) =>
  new RelayClientError({ status: 200, code: 'unexpected_response', detail, canRetry: false });

export function isProblemDocument(value: unknown): value is ProblemDocument {
  if (typeof value !== 'object' || value === null) return false;
  const { status, code } = value as { status?: unknown; code?: unknown };
  return typeof status === 'number' && typeof code === 'string';
}

/** Why the client refused a key, a message or a peer record. */
export const ENVELOPE_ERROR_CODES = {
  invalid_key: 'A key is not one this client signs or encrypts with, or is the wrong half (public or private) of one.',
  untrusted_peer_key:
    "The relay's record of a peer does not prove itself: its signing key is not the one its address names, or its signed registration disagrees.",
  content_too_large: 'The encrypted message would be over the 65,536 bytes the relay accepts.',
  malformed_signature:
    'The signature is not a compact JWS with an EdDSA or ES256 header carrying the public jwk of the signer.',
  bad_signature: 'The signature does not verify with the key in its header.',
  sender_mismatch: 'The signing key is not the key whose thumbprint is the sender address.',
  claims_mismatch: 'The signed message id, sender, recipient or type differ from the message.',
  content_hash_mismatch: 'The signed SHA-256 does not match the ciphertext: the content was changed after signing.',
  wrong_recipient: 'The message is addressed to another peer.',
  decryption_failed:
    'The content is not a compact JWE this identity can decrypt (A256GCM with RSA-OAEP-256, ECDH-ES+A256KW or ECDH-ES).',
} as const;

export type EnvelopeErrorCode = keyof typeof ENVELOPE_ERROR_CODES;

/** This client refused a key or a message; never retriable, because the bytes themselves are wrong. */
export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  readonly canRetry = false;

  constructor(
    readonly code: EnvelopeErrorCode,
    detail: string,
    /** The message concerned, when there is one. */
    readonly messageId?: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${detail}`, options);
  }
}
