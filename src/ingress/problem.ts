import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError } from '../errors/app-error.js';
import { ERROR_CODES, type ErrorCode } from '../errors/codes.js';
import { DependencyUnavailableError, isDependencyFailure, OverloadedError } from '../errors/failure.js';
import type { Logger } from '../observability/logger.js';

import { PROBLEM_CONTENT_TYPE, type Problem as WireProblem } from '../api/problem.js';

export { PROBLEM_CONTENT_TYPE };

/** A problem document as this relay makes it: its `code` is one of ours. */
export type Problem = WireProblem & { readonly code: ErrorCode };

export const problemOf = (error: AppError): Problem => ({
  type: `urn:relay:error:${error.code}`,
  title: ERROR_CODES[error.code].title,
  status: error.status,
  detail: error.message,
  code: error.code,
  ...error.extensions,
});

/**
 * Says where the JSON breaks in the relay's own words. The parser's message quotes the body back
 * (and changes between Node.js versions), so only the position is taken from it.
 */
const malformedJsonDetail = (parserMessage: string | undefined): string => {
  const position = /position (\d+)/.exec(parserMessage ?? '')?.[1];
  return position === undefined
    ? 'The body is not valid JSON.'
    : `The body is not valid JSON: it breaks at character ${position} (counting from 0).`;
};

/**
 * Maps what the relay's layers, body-parser, pg and ioredis throw onto the relay's codes; anything
 * else is internal.
 */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  // The layers below raise their own errors; this is where they become HTTP.
  if (error instanceof OverloadedError) {
    return new AppError('overloaded', 'The relay is at capacity; retry after the given delay.', {
      cause: error,
      extensions: { retry_after: error.retryAfterSeconds },
    });
  }
  if (error instanceof DependencyUnavailableError) {
    return new AppError('dependency_unavailable', error.message, {
      cause: error,
      extensions: { retry_after: error.retryAfterSeconds },
    });
  }
  const e = (error ?? {}) as { type?: string; status?: number; limit?: number; message?: string };
  if (isDependencyFailure(error)) {
    return new AppError('dependency_unavailable', 'A service the relay needs does not answer; retry shortly.', {
      cause: error,
      extensions: { retry_after: 1 },
    });
  }
  switch (e.type) {
    case 'request.size.invalid':
    case 'request.aborted':
      return new AppError('invalid_request', 'The body ended before its declared Content-Length.');
    case 'entity.parse.failed':
      return new AppError('malformed_json', malformedJsonDetail(e.message));
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
    if (appError.code === 'internal_error' || appError.code === 'dependency_unavailable') {
      log.error({ method: req.method, path: req.path, err: appError.cause }, 'request failed');
    }
    const retryAfter =
      (appError.extensions['retry_after'] as number | undefined) ?? (appError.status === 503 ? 1 : undefined);
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    res
      .status(appError.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(problemOf(appError)));
  };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `No endpoint answers ${req.method} ${req.path}.`));
};
