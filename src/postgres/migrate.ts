import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../config/paths.js';
import type { Logger } from '../observability/logger.js';
import { inTransaction, type Pool } from './pool.js';

const MIGRATION_FILE = /^(\d{3,})_[a-z0-9_]+\.sql$/;
// Any fixed number: concurrent start-ups take turns instead of racing on the same DDL.
const MIGRATION_LOCK = 0x72656c6179;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The plain SQL migrations in migrations/, in order of their number. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => MIGRATION_FILE.test(file)).sort();
  const migrations = await Promise.all(
    files.map(async (name) => ({
      version: Number(MIGRATION_FILE.exec(name)?.[1]),
      name,
      sql: await readFile(join(dir, name), 'utf8'),
    })),
  );
  const versions = new Set(migrations.map((m) => m.version));
  if (versions.size !== migrations.length) throw new Error(`two migrations in ${dir} share a number`);
  return migrations;
}

/**
 * Applies the migrations not yet applied to `schema` and records them in `schema_migrations`, all
 * in one transaction: a failing migration leaves the schema as it was. Returns the names applied.
 */
export async function migrate(
  pool: Pool,
  schema: string,
  log: Logger,
  migrations?: readonly Migration[],
): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  const applied: string[] = [];
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`SET LOCAL search_path TO "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    for (const migration of all) {
      if (done.has(migration.version)) continue;
      try {
        await client.query(migration.sql);
      } catch (error) {
        throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
      }
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.name);
      log.info({ migration: migration.name, schema }, 'applied migration');
    }
  });
  return applied;
}
