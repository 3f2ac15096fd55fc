import WebSocket from 'ws';
import { eventually } from './context.js';

export interface Frame {
  type: string;
  [field: string]: unknown;
}

/** A raw stream client that collects frames as they arrive, and how the socket closed. */
export class StreamClient {
  readonly frames: Frame[] = [];
  /** Resolves with the close code once the socket has closed. */
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse((data as Buffer).toString()) as Frame));
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  }

  static async open(url: string, onFrame?: (frame: Frame, client: StreamClient) => void): Promise<StreamClient> {
    const ws = new WebSocket(url);
    const client = new StreamClient(ws);
    if (onFrame) ws.on('message', () => onFrame(client.frames[client.frames.length - 1] as Frame, client));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return client;
  }

  /** The message frames received so far. */
  messages(): Frame[] {
    return this.frames.filter((f) => f.type === 'message');
  }

  async next(predicate: (frame: Frame) => boolean, what: string, timeoutMs = 15_000): Promise<Frame> {
    return eventually(async () => this.frames.find(predicate), timeoutMs, what);
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

/** Runs `work` over `items`, at most `concurrency` at a time; resolves with the results in order. */
export async function inParallel<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index] as T, index);
      }
    }),
  );
  return results;
}
