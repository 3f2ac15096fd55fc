import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/config/paths.js';

const exec = promisify(execFile);

/** Runs infra/bin/stack with arguments; resolves with its stdout. */
export async function stack(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 240_000,
): Promise<string> {
  const { stdout } = await exec(`${PROJECT_ROOT}infra/bin/stack`, [...args], {
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** Starts `relay <role>` from the compiled CLI as a child process with the given environment. */
export function spawnRelay(role: string, env: Readonly<Record<string, string>>): ChildProcess {
  const child = spawn(process.execPath, [`${PROJECT_ROOT}dist/cli/main.js`, role], {
    env: { ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  });
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`relay ${role} exited with ${code}:\n${tail}\n`);
  });
  return child;
}

/** Resolves when the child has exited. */
export const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
