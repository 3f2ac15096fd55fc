import { createRequire } from 'node:module';

/** The part of kafkajs's per-connection RequestQueue (2.2.4) that the fix below replaces. */
interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's own wait between checks of a queue held back by the in-flight limit. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

/**
 * kafkajs 2.2.4 keeps a timer loop running on every broker connection, busy or idle:
 * `checkPendingRequests` always ends by calling `scheduleCheckPendingRequests`, which with no
 * request pending and no throttle arms `setTimeout` with a negative delay, that is 1 ms, whose
 * callback calls `checkPendingRequests` again. Each relay process holds several connections, so
 * an idle role spent about 6 % of a core on it, and a busy one as much on top of its work
 * (kafkajs issue #1556; the fix, pull request #1667, was never released).
 *
 * Here a check is scheduled only while requests are pending: at the end of a client-side
 * throttle, or after kafkajs's 10 ms otherwise. Nothing else needs the timer: `push` schedules a
 * check whenever it queues a request, and every answered or timed-out request checks the queue.
 */
export function scheduleCheckPendingRequests(this: RequestQueue): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const throttled = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(
    () => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    },
    throttled > 0 ? throttled : CHECK_PENDING_REQUESTS_INTERVAL,
  );
}

const require = createRequire(import.meta.url);
const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueue };
if (
  typeof prototype.scheduleCheckPendingRequests !== 'function' ||
  typeof prototype.checkPendingRequests !== 'function'
)
  throw new Error('kafkajs RequestQueue changed: review src/kafka/request-queue-fix.ts');
prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
