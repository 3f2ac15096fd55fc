import { isRetriable } from '../errors/failure.js';
import { sleep } from './service.js';

export interface RetryOptions {
  /** Tries in all, the first included; `Infinity` tries until `signal` aborts. */
  readonly attempts: number;
  /** Milliseconds to wait after the n-th failure (n counts from 1) before trying again. */
  readonly backoff: (failures: number) => number;
  /** Stops retrying once aborted: the last failure is then thrown. */
  readonly signal?: AbortSignal;
  /** Whether a failure is worth another try; by default the failure policy (src/errors/failure.ts) decides. */
  readonly isRetriable?: (error: unknown) => boolean;
  /** Told of each failure that will be tried again, with the wait before the next try. */
  readonly onRetry?: (error: unknown, failures: number, waitMs: number) => void;
}

/** Waits `initialMs`, then twice as long after each further failure, at most `maxMs`. */
export const exponentialBackoff =
  ({ initialMs, maxMs = Number.POSITIVE_INFINITY }: { initialMs: number; maxMs?: number }) =>
  (failures: number): number =>
    Math.min(maxMs, initialMs * 2 ** (failures - 1));

/**
 * The one retry loop: runs `work` until it succeeds, and rethrows its last failure once attempts
 * run out, the failure is not retriable, or the signal aborts.
 */
export async function withRetry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retriable = options.isRetriable ?? isRetriable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      if (attempt >= options.attempts || options.signal?.aborted || !retriable(error)) throw error;
      const waitMs = options.backoff(attempt);
      options.onRetry?.(error, attempt, waitMs);
      await sleep(waitMs, options.signal);
      if (options.signal?.aborted) throw error;
    }
  }
}
