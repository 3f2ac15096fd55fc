import { spawn, type ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../../../src/config/paths.js';

export const RELAY_CLI = `${PROJECT_ROOT}dist/cli/main.js`;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts the compiled `relay` CLI with arguments and an environment; stdout and stderr are pipes. */
export function startCli(args: readonly string[], env: Readonly<Record<string, string>>): ChildProcess {
  return spawn(process.execPath, [RELAY_CLI, ...args], { env: { ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the compiled `relay` CLI to its end; fails after `timeoutMs`. */
export function runCli(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  timeoutMs = 120_000,
): Promise<CliResult> {
  return collect(startCli(args, env), timeoutMs);
}

/** Waits for a started CLI to exit, with what it printed. */
export function collect(child: ChildProcess, timeoutMs = 120_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`relay ${child.spawnargs.slice(2).join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`),
      );
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON Lines of a replay, parsed. */
export const jsonLinesOf = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
