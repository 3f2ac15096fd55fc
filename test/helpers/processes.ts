import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/config/paths.js';

const exec = promisify(execFile);

/** Runs infra/bin/stack with arguments; resolves with its stdout. */
export async function stack(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 240_000): Promise<string> {
  const { stdout } = await exec(`${PROJECT_ROOT}infra/bin/stack`, [...args], {
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}
