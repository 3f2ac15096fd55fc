import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../observability/logger.js';
import { AppError } from './app-error.js';
import { ERROR_CODES, type ErrorCode } from './codes.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An RFC 9457 problem document with the relay's stable `code` member. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode;
  readonly [extension: string]: unknown;
}

export const problemOf = (error: AppError): Problem => ({
  type: `urn:relay:error:${error.code}`,
  title: ERROR_CODES[error.code].title,
  status: error.status,
  detail: error.message,
  code: error.code,
  ...error.extensions,
});

/** Maps what body-parser and the like throw onto the relay's codes; anything else is internal. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const e = (error ?? {}) as { type?: string; status?: number; limit?: number; message?: string };
  switch (e.type) {
    case 'entity.parse.failed':
      return new AppError('malformed_json', `The body is not valid JSON: ${e.message ?? 'parse error'}.`);
    case 'entity.too.large':
      return new AppError('payload_too_large', `The body is larger than the limit of ${e.limit ?? '?'} bytes.`, {
        extensions: { limit: e.limit },
      });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media_type', 'The body must be UTF-8 JSON.');
    default:
      return new AppError('internal_error', 'The relay failed unexpectedly; the failure is logged.', { cause: error });
  }
}

/** The one place errors become responses: problem+json, never a stack trace. */
export function problemMiddleware(log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const appError = toAppError(error);
    if (appError.code === 'internal_error') {
      log.error('request failed', { method: req.method, path: req.path, error: describe(appError.cause) });
    }
    if (appError.status === 503) res.setHeader('Retry-After', String(appError.extensions['retry_after'] ?? 1));
    res.status(appError.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problemOf(appError)));
  };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `No endpoint answers ${req.method} ${req.path}.`));
};

export const describe = (error: unknown): string =>
  error instanceof Error ? (error.stack ?? error.message) : String(error);
