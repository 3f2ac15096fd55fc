import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KafkaClient } from '../src/kafka/client.js';
import { PROJECT_ROOT } from '../src/config/paths.js';

export const ROLES = ['ingress', 'projector', 'presence', 'router'] as const;
export type RelayRole = (typeof ROLES)[number];

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'main.js');

/**
 * The relay as separate processes, one per role (`node dist/cli/main.js <role>`), so that each
 * one's CPU time and memory can be read from /proc. Output goes to a log file per process. More
 * ingress processes can be added, each under a name of its own ("ingress 2").
 */
export class RelayProcesses {
  /** By process name: a role, or the name of an added ingress. */
  private readonly children = new Map<string, ChildProcess>();
  private inspector: Promise<string> | undefined;

  constructor(
    private readonly env: Readonly<Record<string, string>>,
    private readonly logDir: string,
    /** Open the ingress's inspector (on a free local port) so that it can be profiled phase by phase. */
    private readonly options: { readonly inspectIngress?: boolean } = {},
  ) {
    mkdirSync(logDir, { recursive: true });
  }

  /** `relay setup` with the bench environment: topics, schemas, migrations. */
  async setup(): Promise<void> {
    const child = this.spawn('setup', []);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    if (code !== 0) throw new Error(`relay setup exited with ${code}; see ${join(this.logDir, 'setup.log')}`);
  }

  /** Starts every role and waits until the ingress is ready and each consumer group is stable. */
  async start(baseUrl: string, kafka: KafkaClient, groupPrefix: string, timeoutMs = 90_000): Promise<void> {
    for (const role of ROLES) {
      const inspect = role === 'ingress' && this.options.inspectIngress === true;
      const child = this.spawn(role, inspect ? ['--inspect=127.0.0.1:0'] : []);
      if (inspect) {
        this.inspector = new Promise((resolve, reject) => {
          let seen = '';
          const scan = (chunk: Buffer) => {
            seen = (seen + chunk.toString()).slice(-4000);
            const url = /Debugger listening on (ws:\/\/\S+)/.exec(seen)?.[1];
            if (url) {
              child.stderr?.off('data', scan);
              resolve(url);
            }
          };
          child.stderr?.on('data', scan);
          child.once('exit', () => reject(new Error('the ingress exited before its inspector listened')));
        });
        this.inspector.catch(() => undefined);
      }
      this.adopt(role, role, child);
    }
    const deadline = Date.now() + timeoutMs;
    const pending = new Set<string>(['ingress', ...ROLES.filter((r) => r !== 'ingress')]);
    const admin = kafka.admin();
    await admin.connect();
    try {
      while (pending.size > 0) {
        for (const [role, child] of this.children) {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`relay ${role} exited during start-up; see ${join(this.logDir, `${role}.log`)}`);
        }
        if (Date.now() > deadline)
          throw new Error(
            `the relay did not become ready in ${timeoutMs / 1000} s: waiting for ${[...pending].join(', ')}`,
          );
        if (pending.has('ingress')) {
          const ready = await fetch(`${baseUrl}/readyz`).then(
            (r) => r.ok,
            () => false,
          );
          if (ready) pending.delete('ingress');
        }
        const groups = ROLES.filter((r) => r !== 'ingress' && pending.has(r));
        if (groups.length > 0) {
          const { groups: described } = await admin.describeGroups(groups.map((r) => `${groupPrefix}.${r}`));
          for (const group of described) {
            if (group.state === 'Stable' && group.members.length > 0)
              pending.delete(group.groupId.slice(groupPrefix.length + 1));
          }
        }
        if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Starts one more ingress process, `name`, with the same environment but its own port and node
   * id (a node id names the process whose sockets a push goes to), and waits until it is ready.
   */
  async addIngress(name: string, port: number, timeoutMs = 60_000): Promise<string> {
    const file = name.replace(/\W+/g, '-');
    const baseUrl = `http://127.0.0.1:${port}`;
    const child = this.spawn('ingress', [], file, {
      RELAY_HTTP_PORT: String(port),
      RELAY_NODE_ID: `${this.env['RELAY_NODE_ID'] ?? 'bench'}-${file}`,
    });
    this.adopt(name, file, child);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`relay ${name} exited during start-up; see ${join(this.logDir, `${file}.log`)}`);
      if (
        await fetch(`${baseUrl}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return baseUrl;
      if (Date.now() > deadline) throw new Error(`relay ${name} did not become ready in ${timeoutMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** The ingress's inspector WebSocket URL (only with inspectIngress). */
  inspectorUrl(): Promise<string> {
    return this.inspector ?? Promise.reject(new Error('the ingress runs without an inspector'));
  }

  /** The pid of a role's process, or of an added ingress by its name. */
  pid(name: string): number | undefined {
    return this.children.get(name)?.pid;
  }

  /**
   * SIGTERM to every process, or to those named (each flushes what it holds and should exit),
   * SIGKILL after `graceMs`. Returns how long each took to exit, and which ones had to be killed.
   */
  async stop(
    graceMs = 10_000,
    names?: readonly string[],
  ): Promise<{ role: string; seconds: number; killed: boolean }[]> {
    const running = [...this.children.entries()].filter(([name]) => !names || names.includes(name));
    for (const [name] of running) this.children.delete(name);
    return Promise.all(
      running.map(async ([role, child]) => {
        const started = performance.now();
        if (child.exitCode !== null || child.signalCode !== null) return { role, seconds: 0, killed: false };
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        let killed = false;
        const timer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, graceMs);
        await exited;
        clearTimeout(timer);
        return { role, seconds: (performance.now() - started) / 1000, killed };
      }),
    );
  }

  /** Synchronous last resort on exit: SIGKILL whatever still runs. */
  killNow(): void {
    for (const child of this.children.values()) if (child.exitCode === null) child.kill('SIGKILL');
  }

  private adopt(name: string, file: string, child: ChildProcess): void {
    child.once('exit', (code, signal) => {
      if (this.children.get(name) === child)
        process.stderr.write(
          `[bench] relay ${name} exited (${code ?? signal}); see ${join(this.logDir, `${file}.log`)}\n`,
        );
    });
    this.children.set(name, child);
  }

  private spawn(
    command: string,
    nodeFlags: readonly string[],
    logName = command,
    env: Readonly<Record<string, string>> = {},
  ): ChildProcess {
    const log = createWriteStream(join(this.logDir, `${logName}.log`), { flags: 'a' });
    const child = spawn(process.execPath, ['--enable-source-maps', ...nodeFlags, CLI, command], {
      env: { ...this.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: PROJECT_ROOT,
    });
    let open = 2;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.pipe(log, { end: false });
      stream?.once('close', () => {
        if (--open === 0) log.end();
      });
    }
    return child;
  }
}
