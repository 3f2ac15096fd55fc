import { AppError } from '../../src/errors/app-error.js';
import type { ErrorCode } from '../../src/errors/codes.js';

/** Runs `fn`, expects it to throw an AppError with `code` and `status`, and returns that error. */
export function expectAppError(fn: () => unknown, code: ErrorCode, status: number): AppError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(AppError);
  const error = thrown as AppError;
  expect(error.code).toBe(code);
  expect(error.status).toBe(status);
  return error;
}
