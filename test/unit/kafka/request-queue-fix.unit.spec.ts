import { createRequire } from 'node:module';
import { scheduleCheckPendingRequests } from '../../../src/kafka/request-queue-fix.js';
// Importing the client applies the fix, as in every relay process.
import '../../../src/kafka/client.js';

interface Queue {
  pending: unknown[];
  inflight: Map<number, unknown>;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  scheduleCheckPendingRequests(): void;
  checkPendingRequests(): void;
  maybeThrottle(ms: number): void;
  push(request: { entry: { correlationId: number }; expectResponse: boolean; sendRequest: () => void }): void;
  destroy(): void;
}

// kafkajs's own per-connection queue, as a broker connection makes it.
const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as new (
  options: object,
) => Queue;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const newQueue = () =>
  new RequestQueue({
    maxInFlightRequests: 1,
    requestTimeout: 30_000,
    clientId: 'test',
    broker: 'b:9092',
    logger: silent,
  });
const request = (correlationId: number, sent: number[]) => ({
  entry: { correlationId, apiKey: 3, apiName: 'Metadata', apiVersion: 6 },
  expectResponse: true,
  sendRequest: () => void sent.push(correlationId),
});

describe('the kafkajs request queue fix', () => {
  let queue: Queue;
  beforeEach(() => (queue = newQueue()));
  afterEach(() => queue.destroy());

  it('is what kafkajs queues run', () => {
    expect(Object.getPrototypeOf(queue)).toHaveProperty('scheduleCheckPendingRequests', scheduleCheckPendingRequests);
  });

  it('arms no timer on a queue with nothing pending (kafkajs re-armed one every millisecond)', () => {
    queue.checkPendingRequests();
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });

  it('sends a request held back by the in-flight limit once the one in flight is answered', () => {
    const sent: number[] = [];
    queue.push(request(1, sent));
    queue.push(request(2, sent));
    expect(sent).toEqual([1]);
    expect(queue.pending).toHaveLength(1);
    expect(queue.throttleCheckTimeoutId).not.toBeNull();
    queue.inflight.delete(1); // what fulfillRequest does before it checks the queue
    queue.checkPendingRequests();
    expect(sent).toEqual([1, 2]);
    expect(queue.pending).toHaveLength(0);
  });

  it('sends a request held back by a client-side throttle when the throttle ends', async () => {
    const sent: number[] = [];
    queue.maybeThrottle(30);
    queue.push(request(1, sent));
    expect(sent).toEqual([]);
    expect(queue.throttleCheckTimeoutId).not.toBeNull();
    // The queue's own timer sends it: wait for the event, not for a guessed time.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (sent.length > 0) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    expect(sent).toEqual([1]);
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });
});
