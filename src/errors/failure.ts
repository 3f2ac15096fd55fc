/**
 * The one failure policy, shared by the consumers, the rebuild and every retry: a failure is
 * either `retriable` (a dependency away, a timeout: the same work may succeed later) or `poison`
 * (the input itself is at fault: trying again can never help, so it is set aside). An error the
 * relay raises says which where it is raised; errors of libraries are read by their codes.
 */
export type FailureKind = 'retriable' | 'poison';

/** A failure raised by one of the relay's own layers, carrying its kind. */
export class RelayFailure extends Error {
  constructor(
    message: string,
    readonly failure: FailureKind,
    options: { cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }
}

/** A dependency (Kafka, Postgres, Redis, the registry, a chain) did not answer or did not confirm. */
export class DependencyUnavailableError extends RelayFailure {
  override readonly name = 'DependencyUnavailableError';
  /** Seconds after which trying again is worthwhile. */
  readonly retryAfterSeconds: number;

  constructor(message: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, 'retriable', options);
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/** Work refused because a bounded queue is full; it may be taken shortly. */
export class OverloadedError extends RelayFailure {
  override readonly name = 'OverloadedError';
  readonly retryAfterSeconds: number;

  constructor(message: string, options: { retryAfterSeconds?: number } = {}) {
    super(message, 'retriable');
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/** Input that can never be processed: an event that cannot be decoded or applied. */
export class PoisonError extends RelayFailure {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, 'poison', options);
  }
}

// Network failures, and Postgres's "connection exception" (08) and "operator intervention" (57)
// SQLSTATE classes: the dependency is away, not the work at fault.
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);
// pg and ioredis raise these without a code; their messages are all there is to go by.
const CODELESS_CONNECTION_FAILURES = [
  'Connection is closed',
  'Connection terminated',
  'timeout exceeded when trying to connect',
];

/** Whether an error says that a dependency is away (as opposed to refusing the work). */
export function isDependencyFailure(error: unknown): boolean {
  if (error instanceof DependencyUnavailableError) return true;
  const e = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || e.code.startsWith('08') || e.code.startsWith('57')))
    return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  const message = typeof e.message === 'string' ? e.message.toLowerCase() : '';
  return CODELESS_CONNECTION_FAILURES.some((text) => message.includes(text.toLowerCase()));
}

/**
 * The kind of any failure: the kind an error of the relay carries; for Postgres, the SQLSTATE
 * class (22 data exception and 23 integrity constraint violation refuse the data itself, so the
 * same event would be refused again); anything else is taken as passing.
 */
export function failureKind(error: unknown): FailureKind {
  if (error instanceof RelayFailure) return error.failure;
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))) return 'poison';
  return 'retriable';
}

export const isPoison = (error: unknown): boolean => failureKind(error) === 'poison';
export const isRetriable = (error: unknown): boolean => failureKind(error) === 'retriable';
