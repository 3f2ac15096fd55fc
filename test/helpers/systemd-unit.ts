import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/paths.js';

/** The parts of a systemd unit (infra/systemd) that decide what a role runs with. */
export interface SystemdUnit {
  readonly name: string;
  readonly workingDirectory: string;
  readonly environmentFile: string;
  /** Environment= assignments, in order. */
  readonly environment: Readonly<Record<string, string>>;
  /** ExecStart, split into arguments as systemd does for a line without quotes. */
  readonly execStart: readonly string[];
  readonly raw: string;
}

const DIR = join(PROJECT_ROOT, 'infra', 'systemd');

/** Reads infra/systemd/<name>; fails on what these units are not meant to use (quotes, several ExecStart). */
export function readUnit(name: string): SystemdUnit {
  const raw = readFileSync(join(DIR, name), 'utf8');
  const entries = raw
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith(';') && !line.startsWith('['))
    .map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)] as const;
    });
  const all = (key: string) => entries.filter(([k]) => k === key).map(([, v]) => v);
  const one = (key: string) => {
    const values = all(key);
    if (values.length !== 1) throw new Error(`${name}: ${values.length} ${key}= lines, expected one`);
    return values[0] as string;
  };
  const execStart = one('ExecStart');
  if (/["'\\$%]/.test(execStart))
    throw new Error(`${name}: ExecStart uses quoting or specifiers this reader does not expand`);
  const environment: Record<string, string> = {};
  for (const assignment of all('Environment')) {
    for (const pair of assignment.split(/\s+/)) {
      const at = pair.indexOf('=');
      environment[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return {
    name,
    workingDirectory: one('WorkingDirectory'),
    environmentFile: one('EnvironmentFile'),
    environment,
    execStart: execStart.split(/\s+/),
    raw,
  };
}

/** An environment file as systemd reads one: KEY=VALUE lines, comments and blank lines ignored. */
export function readEnvironmentFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const at = trimmed.indexOf('=');
    if (at <= 0) throw new Error(`${path}: unreadable line "${trimmed}"`);
    const value = trimmed.slice(at + 1).trim();
    env[trimmed.slice(0, at).trim()] = /^".*"$|^'.*'$/.test(value) ? value.slice(1, -1) : value;
  }
  return env;
}

/** Where the units expect the checkout and the environment file, and where they are in this repository. */
export const INSTALLED = { directory: '/opt/relay', environmentFile: '/etc/relay/relay.env' } as const;
export const REPOSITORY_ENV_FILE = join(DIR, 'relay.env');
