import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { RelayConfig } from '../config/config.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

const connectionSettings = (config: RelayConfig): pg.ClientConfig => ({
  connectionString: config.postgres.url,
  options: `-c search_path=${config.postgres.schema}`,
  application_name: 'relay',
  // A connection that holds LISTEN must notice a dead peer: keepalives probe it.
  keepAlive: true,
  // A private CA for TLS. node-postgres lets an sslmode in the URL replace this setting, so
  // with a CA file leave sslmode out of the URL (or name the CA with sslrootcert= there).
  ...(config.databaseCaFile
    ? { ssl: { ca: readFileSync(config.databaseCaFile, 'utf8'), rejectUnauthorized: true } }
    : {}),
});

/** A pool whose connections work in the configured schema (search_path), created if missing. */
export function createPool(config: RelayConfig, overrides: Partial<pg.PoolConfig> = {}): Pool {
  return new pg.Pool({ ...connectionSettings(config), max: config.postgres.poolSize, ...overrides });
}

/** One connection outside the pool, with the pool's settings: for LISTEN, which holds its connection. */
export const createClient = (config: RelayConfig): pg.Client => new pg.Client(connectionSettings(config));

/** Runs `work` in one transaction on one connection; rolls back if it throws. */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
