import { runServices, sleep, untilAborted, type Service } from '../../../src/lifecycle/service.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

/** A service that runs until its signal aborts, then takes `stopMs` to flush, recording what happened. */
function waitingService(name: string, stopMs = 0) {
  const state = { started: false, sawAbort: false, finished: false, signal: undefined as AbortSignal | undefined };
  const service: Service = {
    name,
    async run(signal) {
      state.started = true;
      state.signal = signal;
      await untilAborted(signal);
      state.sawAbort = signal.aborted;
      if (stopMs > 0) await new Promise((resolve) => setTimeout(resolve, stopMs));
      state.finished = true;
    },
  };
  return { service, state };
}

describe('runServices', () => {
  it('resolves once the signal aborts and every service has returned', async () => {
    const a = waitingService('a', 5);
    const b = waitingService('b', 30);
    const controller = new AbortController();
    const { log, entries } = recordingLogger();
    let settled = false;
    const running = runServices([a.service, b.service], controller.signal, log).then(() => {
      settled = true;
    });
    await sleep(10);
    expect(a.state.started && b.state.started).toBe(true);
    expect(settled).toBe(false);
    controller.abort();
    await running;
    expect(a.state).toMatchObject({ sawAbort: true, finished: true });
    expect(b.state).toMatchObject({ sawAbort: true, finished: true });
    expect(entries.filter((e) => e.level === 'error' || e.level === 'warn')).toEqual([]);
  });

  it("gives the services their own signal, not the caller's", async () => {
    const a = waitingService('a');
    const controller = new AbortController();
    const running = runServices([a.service], controller.signal, recordingLogger().log);
    await new Promise((resolve) => setImmediate(resolve));
    expect(a.state.signal).toBeDefined();
    expect(a.state.signal).not.toBe(controller.signal);
    controller.abort();
    await running;
    expect(a.state.signal?.aborted).toBe(true);
  });

  it('resolves at once with services that stop when the signal is already aborted', async () => {
    const a = waitingService('a');
    const controller = new AbortController();
    controller.abort();
    await runServices([a.service], controller.signal, recordingLogger().log);
    expect(a.state).toMatchObject({ started: true, sawAbort: true, finished: true });
  });

  it('resolves for no services', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(runServices([], controller.signal, recordingLogger().log)).resolves.toBeUndefined();
  });

  it('stops the others when one fails, and rejects with that failure once all have stopped', async () => {
    const a = waitingService('a', 20);
    const b = waitingService('b');
    const failure = new Error('broker gone');
    const failing: Service = {
      name: 'failing',
      async run() {
        await sleep(5);
        throw failure;
      },
    };
    const controller = new AbortController();
    const { log, entries } = recordingLogger();
    await expect(runServices([a.service, failing, b.service], controller.signal, log)).rejects.toBe(failure);
    expect(controller.signal.aborted).toBe(false);
    expect(a.state).toMatchObject({ sawAbort: true, finished: true });
    expect(b.state).toMatchObject({ sawAbort: true, finished: true });
    const errors = entries.filter((e) => e.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.['service']).toBe('failing');
    expect(errors[0]?.['err']).toMatchObject({
      type: 'Error',
      message: 'broker gone',
      stack: expect.stringContaining('broker gone') as unknown,
    });
  });

  it('rejects with the first failure when several fail', async () => {
    const first = new Error('first');
    const second = new Error('second');
    const failsFirst: Service = {
      name: 'first',
      async run() {
        await sleep(5);
        throw first;
      },
    };
    const failsOnStop: Service = {
      name: 'second',
      async run(signal) {
        await untilAborted(signal);
        throw second;
      },
    };
    const { log, entries } = recordingLogger();
    await expect(runServices([failsOnStop, failsFirst], new AbortController().signal, log)).rejects.toBe(first);
    expect(entries.filter((e) => e.level === 'error').map((e) => e['service'])).toEqual(['first', 'second']);
  });

  it('stops the others when one returns on its own, and warns', async () => {
    const a = waitingService('a');
    const quitter: Service = { name: 'quitter', run: async () => undefined };
    const { log, entries } = recordingLogger();
    await runServices([a.service, quitter], new AbortController().signal, log);
    expect(a.state).toMatchObject({ sawAbort: true, finished: true });
    expect(entries.filter((e) => e.level === 'warn').map((e) => e['service'])).toEqual(['quitter']);
  });
});

describe('untilAborted', () => {
  it('resolves at once for an aborted signal and on abort otherwise', async () => {
    const aborted = new AbortController();
    aborted.abort();
    await expect(untilAborted(aborted.signal)).resolves.toBeUndefined();

    const controller = new AbortController();
    let resolved = false;
    const waiting = untilAborted(controller.signal).then(() => {
      resolved = true;
    });
    await sleep(5);
    expect(resolved).toBe(false);
    controller.abort();
    await waiting;
    expect(resolved).toBe(true);
  });
});

describe('sleep', () => {
  it('waits the given time without a signal', async () => {
    const started = performance.now();
    await sleep(30);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('resolves early when the signal aborts', async () => {
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 10);
    await sleep(10_000, controller.signal);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('resolves at once for an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const started = performance.now();
    await sleep(10_000, controller.signal);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('still resolves on time when the signal never aborts', async () => {
    const controller = new AbortController();
    const started = performance.now();
    await sleep(20, controller.signal);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    expect(controller.signal.aborted).toBe(false);
  });
});
