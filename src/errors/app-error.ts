import { ERROR_CODES, type ErrorCode } from './codes.js';

/** An error with a stable code; its HTTP status and retry behaviour come from the code. */
export class AppError extends Error {
  readonly status: number;
  readonly retriable: boolean;
  /** Extra members for the problem document (for example the failing `field`). */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: ErrorCode,
    detail: string,
    options: { cause?: unknown; extensions?: Record<string, unknown> } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
    this.retriable = ERROR_CODES[code].retriable;
    this.extensions = options.extensions ?? {};
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;
