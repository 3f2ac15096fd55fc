import { execFile } from 'node:child_process';
import { access, chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes.js';

const run = promisify(execFile);

export type Program = 'initdb' | 'pg_ctl' | 'pg_basebackup';

/** A PostgreSQL program: from PATH, or from Debian's /usr/lib/postgresql/<version>/bin (newest first). */
export async function postgresProgram(name: Program): Promise<string> {
  const onPath = await run('sh', ['-c', `command -v ${name}`]).then(
    ({ stdout }) => stdout.trim(),
    () => '',
  );
  if (onPath) return onPath;
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
    const candidate = `/usr/lib/postgresql/${version}/bin/${name}`;
    if (
      await access(candidate).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new Error(`${name} not found on PATH or under /usr/lib/postgresql`);
}

// initdb and postgres refuse to run as root: as root, run them as the postgres user.
const asOwner = async (name: Program, args: string[]) => {
  const command = await postgresProgram(name);
  return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args);
};

/**
 * A PostgreSQL server of a test's own, on a free port in a temporary directory, with trust
 * authentication for 127.0.0.1 (replication included: initdb's default pg_hba.conf allows it).
 */
export class PrivatePostgres {
  private constructor(
    private readonly home: string,
    readonly port: number,
  ) {}

  private get data(): string {
    return join(this.home, 'data');
  }

  /** A database URL of this server, as the superuser. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** A new primary server. */
  static async start(label: string): Promise<PrivatePostgres> {
    const server = new PrivatePostgres(await PrivatePostgres.ownDirectory(label), await freePort());
    await asOwner('initdb', ['-D', server.data, '-U', 'postgres', '--auth=trust', '-N']);
    await server.startServer();
    return server;
  }

  /** A hot standby of this server, copied by `pg_basebackup -R` and streaming from it. */
  async streamingReplica(label: string): Promise<PrivatePostgres> {
    const replica = new PrivatePostgres(await PrivatePostgres.ownDirectory(label), await freePort());
    await asOwner('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-U',
      'postgres',
      '-D',
      replica.data,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    await replica.startServer();
    return replica;
  }

  /** Stops the server at once, as a crash would. */
  async kill(): Promise<void> {
    await asOwner('pg_ctl', ['-D', this.data, '-m', 'immediate', 'stop']).catch(() => undefined);
  }

  /** Stops the server and deletes its files. */
  async remove(): Promise<void> {
    await this.kill();
    await rm(this.home, { recursive: true, force: true });
  }

  private async startServer(): Promise<void> {
    const options = `-p ${this.port} -k ${this.home} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await asOwner('pg_ctl', ['-D', this.data, '-o', options, '-l', join(this.home, 'postgres.log'), '-w', 'start']);
  }

  /** A directory of its own (the shared temporary one is private to this user), owned by the server's user. */
  private static async ownDirectory(label: string): Promise<string> {
    const home = await mkdtemp(join(tmpdir(), `relay-${label}-`));
    const owner = process.getuid?.() === 0 ? (await run('id', ['-u', 'postgres'])).stdout.trim() : undefined;
    if (owner) await chown(home, Number(owner), Number(owner));
    return home;
  }
}
