import WebSocket from 'ws';
import type { CpuProfile } from './cpu-profile.js';

/**
 * Starts and stops V8's sampling profiler in another Node process through its inspector
 * (`node --inspect=127.0.0.1:0`), so that each phase gets a profile of its own and nothing
 * depends on the process exiting cleanly (which `--cpu-prof` needs to write its file).
 */
export class InspectorProfiler {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString()) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      if (message.id === undefined) return;
      const pending = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.error) pending?.reject(new Error(message.error.message));
      else pending?.resolve(message.result);
    });
  }

  static connect(url: string): Promise<InspectorProfiler> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
      ws.once('open', () => resolve(new InspectorProfiler(ws)));
      ws.once('error', reject);
    });
  }

  private call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(): Promise<void> {
    await this.call('Profiler.enable');
    await this.call('Profiler.setSamplingInterval', { interval: 500 });
    await this.call('Profiler.start');
  }

  async stop(): Promise<CpuProfile> {
    const { profile } = await this.call<{ profile: CpuProfile }>('Profiler.stop');
    return profile;
  }

  close(): void {
    this.ws.close();
  }
}
