import type { Logger } from '../observability/logger.js';

/**
 * A long-running part of the relay. `run` returns once `signal` aborts and the service has
 * flushed what it holds; it rejects if the service fails. Start-up work happens inside `run`.
 */
export interface Service {
  readonly name: string;
  run(signal: AbortSignal): Promise<void>;
}

/**
 * Runs services side by side until `signal` aborts or one of them fails; then every other
 * service is asked to stop, and this resolves (or rejects with the first failure) once all have.
 */
export async function runServices(services: readonly Service[], signal: AbortSignal, log: Logger): Promise<void> {
  const stopAll = new AbortController();
  const onAbort = () => stopAll.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) stopAll.abort();
  let firstFailure: unknown;
  await Promise.all(
    services.map(async (service) => {
      try {
        await service.run(stopAll.signal);
        if (!stopAll.signal.aborted)
          log.warn({ service: service.name }, 'service ended on its own; stopping the others');
      } catch (error) {
        log.error({ service: service.name, err: error }, 'service failed; stopping the others');
        firstFailure ??= error;
      } finally {
        stopAll.abort();
      }
    }),
  );
  signal.removeEventListener('abort', onAbort);
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the failing service's own error, rethrown as-is
  if (firstFailure !== undefined) throw firstFailure;
}

/**
 * One service made of stages that run side by side but stop in order: when `signal` aborts (or a
 * stage fails or ends), the first stage is asked to stop, and each later stage only once the one
 * before has returned. The ingress stops accepting and closes its streams before the producer
 * that their last requests and presence events go through.
 */
export function stopInOrder(name: string, stages: readonly (readonly Service[])[], log: Logger): Service {
  return {
    name,
    async run(signal: AbortSignal): Promise<void> {
      const controllers = stages.map(() => new AbortController());
      let firstFailure: unknown;
      let beginStopping!: () => void;
      const stopping = new Promise<void>((resolve) => (beginStopping = resolve));
      signal.addEventListener('abort', () => beginStopping(), { once: true });
      if (signal.aborted) beginStopping();
      const runs = stages.map((stage, i) =>
        runServices(stage, (controllers[i] as AbortController).signal, log)
          .catch((error: unknown) => {
            firstFailure ??= error;
          })
          .finally(() => beginStopping()),
      );
      await stopping;
      for (const [i, controller] of controllers.entries()) {
        controller.abort();
        await runs[i];
      }
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the failing service's own error, rethrown as-is
      if (firstFailure !== undefined) throw firstFailure;
    },
  };
}

/** Resolves when the signal aborts. */
export const untilAborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

/** Waits `ms`, or less if the signal aborts first. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
