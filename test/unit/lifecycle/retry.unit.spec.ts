import { PoisonError } from '../../../src/errors/failure.js';
import { exponentialBackoff, withRetry } from '../../../src/lifecycle/retry.js';

/** Work that fails with `failures[i]` on its i-th call and then returns the call count. */
const failing = (failures: Error[]) => {
  let calls = 0;
  const work = async (): Promise<number> => {
    const failure = failures[calls++];
    if (failure !== undefined) throw failure;
    return calls;
  };
  return { work, calls: () => calls };
};

describe('withRetry', () => {
  it('tries again after passing failures and returns the first success', async () => {
    const { work, calls } = failing([new Error('away'), new Error('away')]);
    const retries: number[] = [];
    await expect(withRetry(work, { attempts: 5, backoff: () => 0, onRetry: (_e, n) => retries.push(n) })).resolves.toBe(
      3,
    );
    expect(calls()).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('rethrows the last failure once the attempts are spent', async () => {
    const last = new Error('third');
    const { work, calls } = failing([new Error('first'), new Error('second'), last]);
    await expect(withRetry(work, { attempts: 3, backoff: () => 0 })).rejects.toBe(last);
    expect(calls()).toBe(3);
  });

  it('never tries poison again', async () => {
    const poison = new PoisonError('bad event');
    const { work, calls } = failing([poison]);
    await expect(withRetry(work, { attempts: 5, backoff: () => 0 })).rejects.toBe(poison);
    expect(calls()).toBe(1);
  });

  it('lets the caller decide what is retriable', async () => {
    const fatal = new Error('fatal');
    const { work, calls } = failing([new Error('lock timeout'), fatal]);
    await expect(withRetry(work, { attempts: 5, backoff: () => 0, isRetriable: (e) => e !== fatal })).rejects.toBe(
      fatal,
    );
    expect(calls()).toBe(2);
  });

  it('stops when the signal aborts during a wait', async () => {
    const stop = new AbortController();
    const first = new Error('away');
    const { work, calls } = failing([first, new Error('away again')]);
    const run = withRetry(work, {
      attempts: Number.POSITIVE_INFINITY,
      backoff: () => 60_000,
      signal: stop.signal,
      onRetry: () => stop.abort(),
    });
    await expect(run).rejects.toBe(first);
    expect(calls()).toBe(1);
  });
});

describe('exponentialBackoff', () => {
  it('doubles from the first wait up to the cap', () => {
    const backoff = exponentialBackoff({ initialMs: 1000, maxMs: 30_000 });
    expect([1, 2, 3, 4, 5, 6, 7].map(backoff)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });
});
