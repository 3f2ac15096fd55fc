import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { createPool } from '../../../src/postgres/pool.js';
import { loadConfig } from '../../../src/config/config.js';
import { createRedis } from '../../../src/redis/client.js';
import { createKafka } from '../../../src/kafka/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { startLocalChain, type LocalChain } from '../../helpers/chain.js';
import { eventually } from '../../helpers/context.js';
import { exited, freePort } from '../../helpers/processes.js';
import {
  INSTALLED,
  readEnvironmentFile,
  readUnit,
  REPOSITORY_ENV_FILE,
  type SystemdUnit,
} from '../../helpers/systemd-unit.js';

// Each role started the way its systemd unit starts it: the unit's ExecStart, run from its
// WorkingDirectory (this checkout stands for /opt/relay), with the repository's relay.env and the
// unit's own Environment= lines. On top, only what keeps this file apart from other tests: its
// topic, group, schema and Redis prefixes, free ports instead of the fixed ones, and the chain of
// its own that the anchoring lines of relay.env (commented out there) point at.

const ROLES = ['ingress', 'projector', 'presence', 'router', 'expiry', 'anchor'] as const;

describe('the systemd units', () => {
  const id = `systemd_${randomBytes(4).toString('hex')}`;
  const isolation = {
    RELAY_TOPIC_PREFIX: `test.${id}.`,
    RELAY_CONSUMER_GROUP_PREFIX: `test.${id}`,
    RELAY_DATABASE_SCHEMA: `t_${id}`,
    RELAY_REDIS_PREFIX: `test:${id}:`,
    RELAY_LOG_LEVEL: 'warn',
  };
  let chain: LocalChain;
  const children: ChildProcess[] = [];

  /** The environment systemd gives a unit: the file, then its Environment= lines; then this file's isolation. */
  const environmentOf = (unit: SystemdUnit, extra: Record<string, string>): Record<string, string> => ({
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    ...readEnvironmentFile(REPOSITORY_ENV_FILE),
    ...unit.environment,
    ...isolation,
    ...chain.env,
    ...extra,
  });

  const start = (unit: SystemdUnit, env: Record<string, string>): ChildProcess => {
    expect(unit.workingDirectory).toBe(INSTALLED.directory);
    expect(unit.environmentFile).toBe(INSTALLED.environmentFile);
    const [command, ...args] = unit.execStart;
    const child = spawn(command as string, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-4000)));
    child.once('exit', (code, signal) => {
      if (code !== 0 && signal === null) process.stderr.write(`${unit.name} exited with ${code}:\n${tail}\n`);
    });
    children.push(child);
    return child;
  };

  const exitCode = async (child: ChildProcess): Promise<number | null> => {
    await exited(child);
    return child.exitCode;
  };

  beforeAll(async () => {
    if (!existsSync(`${PROJECT_ROOT}dist/cli/main.js`))
      throw new Error('run npm run build first: the units run dist/cli/main.js');
    chain = await startLocalChain();
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(children.map((child) => exited(child)));
    if (chain) await chain.stop();
    // What relay setup created for this file: its topics, schema and Redis keys.
    const config = loadConfig({ ...readEnvironmentFile(REPOSITORY_ENV_FILE), ...isolation });
    const admin = createKafka(config, createLogger('error')).admin();
    await admin.connect();
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(isolation.RELAY_TOPIC_PREFIX));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
    await admin.disconnect();
    const pool = createPool(config);
    await pool.query(`DROP SCHEMA IF EXISTS "${isolation.RELAY_DATABASE_SCHEMA}" CASCADE`);
    await pool.end();
    const redis = createRedis(config);
    const keys = await redis.keys(`${isolation.RELAY_REDIS_PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }, 60_000);

  it('relay-setup.service prepares topics, schemas and the database, and exits 0', async () => {
    const unit = readUnit('relay-setup.service');
    expect(unit.execStart.slice(-1)).toEqual(['setup']);
    expect(unit.raw).toMatch(/^Type=oneshot$/m);
    expect(await exitCode(start(unit, environmentOf(unit, {})))).toBe(0);
  }, 120_000);

  it.each(ROLES)(
    'relay-%s.service answers /readyz, then stops in order on SIGTERM',
    async (role) => {
      const unit = readUnit(`relay-${role}.service`);
      expect(unit.execStart.slice(-1)).toEqual([role]);
      // The ingress answers on its HTTP port; every other role on its RELAY_METRICS_PORT.
      const portVariable = role === 'ingress' ? 'RELAY_HTTP_PORT' : 'RELAY_METRICS_PORT';
      const env = environmentOf(unit, {});
      expect(env[portVariable]).toMatch(/^\d+$/);
      const port = await freePort();
      const child = start(unit, { ...env, [portVariable]: String(port) });
      const ready = await eventually(
        async () => {
          if (child.exitCode !== null) throw new Error(`${unit.name} exited with ${child.exitCode}`);
          const response = await fetch(`http://127.0.0.1:${port}/readyz`);
          return response.status === 200
            ? ((await response.json()) as { status: string; checks: Record<string, unknown> })
            : undefined;
        },
        60_000,
        `${unit.name} ready`,
      );
      expect(ready.status).toBe('ready');
      expect(Object.keys(ready.checks).sort()).toEqual(['kafka', 'postgres', 'redis', 'registry']);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain('relay_dependency_up{dependency="kafka"} 1');
      child.kill('SIGTERM');
      expect(await exitCode(child)).toBe(0);
    },
    120_000,
  );
});
