import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { LRUCache } from 'lru-cache';
import { AppError } from '../errors/app-error.js';
import type { Pool } from '../postgres/pool.js';

export const SCOPES = ['peers:write', 'peers:read', 'messages:write', 'messages:read'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyInfo {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly created_at: string;
  readonly revoked_at: string | null;
}

/** The key a caller presents: `rk_<id>_<secret>`; the id is public, the secret is 256 random bits. */
const KEY_FORMAT = /^rk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const CACHE_MS = 5_000;

/**
 * How many key ids each cache holds. Known keys are few (one per application); unknown ids are
 * whatever callers invent, so they get a cache of their own that cannot push known keys out.
 */
export const API_KEY_CACHE = { known: 10_000, unknown: 10_000, knownBytes: 8 * 1024 * 1024 } as const;

// A known key's entry: its digest, id, scopes and dates (about 400 bytes with V8's overhead) and
// its name, which the operator chose and may be long. An unknown id's entry is a 12-character id.
const knownKeyBytes = (entry: KnownKey): number => 400 + 2 * (entry.info?.name.length ?? 0);

interface KnownKey {
  readonly digest: Buffer;
  /** Undefined for a revoked key. */
  readonly info: ApiKeyInfo | undefined;
}

const sha256 = (secret: string) => createHash('sha256').update(secret).digest();

/**
 * API keys for service authentication, stored hashed in Postgres. A key's record is cached for
 * 5 s per process, so a revocation takes effect everywhere within that time. An id with no key
 * is remembered for as long, so repeating it costs no query; both caches are bounded.
 */
export class ApiKeyStore {
  private readonly known: LRUCache<string, KnownKey>;
  private readonly unknown: LRUCache<string, true>;

  constructor(
    private readonly pool: Pool,
    bounds: { readonly knownIds?: number; readonly unknownIds?: number } = {},
  ) {
    this.known = new LRUCache({
      max: bounds.knownIds ?? API_KEY_CACHE.known,
      maxSize: API_KEY_CACHE.knownBytes,
      sizeCalculation: knownKeyBytes,
      ttl: CACHE_MS,
    });
    this.unknown = new LRUCache({ max: bounds.unknownIds ?? API_KEY_CACHE.unknown, ttl: CACHE_MS });
  }

  /** Creates a key; the returned `key` is shown once and never stored. */
  async create(name: string, scopes: readonly Scope[] = SCOPES): Promise<{ key: string; info: ApiKeyInfo }> {
    const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
    const secret = randomBytes(32).toString('base64url');
    const { rows } = await this.pool.query<{ created_at: Date }>(
      'INSERT INTO api_keys (id, name, secret_sha256, scopes) VALUES ($1, $2, $3, $4) RETURNING created_at',
      [id, name, sha256(secret), scopes],
    );
    this.unknown.delete(id);
    return {
      key: `rk_${id}_${secret}`,
      info: {
        id,
        name,
        scopes: [...scopes],
        created_at: (rows[0]?.created_at ?? new Date()).toISOString(),
        revoked_at: null,
      },
    };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const { rows } = await this.pool.query<{
      id: string;
      name: string;
      scopes: Scope[];
      created_at: Date;
      revoked_at: Date | null;
    }>('SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at');
    return rows.map((r) => ({
      ...r,
      created_at: r.created_at.toISOString(),
      revoked_at: r.revoked_at?.toISOString() ?? null,
    }));
  }

  /** Revokes a key by id; false if there is no such key. */
  async revoke(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
      [id],
    );
    this.known.delete(id);
    return (rowCount ?? 0) > 0 || (await this.pool.query('SELECT 1 FROM api_keys WHERE id = $1', [id])).rowCount === 1;
  }

  /** The key's record if `presented` is a valid, unrevoked key; throws the matching 401 otherwise. */
  async verify(presented: string | undefined): Promise<ApiKeyInfo> {
    if (!presented) throw new AppError('missing_api_key', 'Send an API key in the X-API-Key header.');
    const match = KEY_FORMAT.exec(presented);
    if (!match) throw new AppError('invalid_api_key', 'The API key is not one this relay issued.');
    const [, id, secret] = match as unknown as [string, string, string];
    const entry = await this.lookup(id);
    if (!entry) throw new AppError('invalid_api_key', 'The API key is unknown or revoked.');
    if (!entry.info || !timingSafeEqual(entry.digest, sha256(secret))) {
      throw new AppError('invalid_api_key', 'The API key is unknown or revoked.');
    }
    return entry.info;
  }

  /** How many ids each cache holds (for tests and the heap benchmark). */
  cacheUsage(): { known: number; unknown: number } {
    return { known: this.known.size, unknown: this.unknown.size };
  }

  /** The key's record, from the caches or Postgres; undefined if there is no key with that id. */
  private async lookup(id: string): Promise<KnownKey | undefined> {
    const cached = this.known.get(id);
    if (cached) return cached;
    if (this.unknown.has(id)) return undefined;
    const { rows } = await this.pool.query<{
      name: string;
      secret_sha256: Buffer;
      scopes: Scope[];
      created_at: Date;
      revoked_at: Date | null;
    }>('SELECT name, secret_sha256, scopes, created_at, revoked_at FROM api_keys WHERE id = $1', [id]);
    const row = rows[0];
    if (!row) {
      this.unknown.set(id, true);
      return undefined;
    }
    const entry: KnownKey = {
      digest: row.secret_sha256,
      info: row.revoked_at
        ? undefined
        : { id, name: row.name, scopes: row.scopes, created_at: row.created_at.toISOString(), revoked_at: null },
    };
    this.known.set(id, entry);
    return entry;
  }
}

/** Requires a valid API key on every request it guards, and records it for rate limits and metrics. */
export function apiKeyMiddleware(store: ApiKeyStore): RequestHandler {
  return async (req, res, next) => {
    try {
      res.locals['apiKey'] = await store.verify(req.get('x-api-key'));
      next();
    } catch (error) {
      next(error);
    }
  };
}

/** Refuses a request whose API key lacks `scope` (403). With auth off there is no key to check. */
export const requireScope =
  (scope: Scope): RequestHandler =>
  (_req, res, next) => {
    const key = res.locals['apiKey'] as ApiKeyInfo | undefined;
    next(
      key && !key.scopes.includes(scope)
        ? new AppError('insufficient_scope', `This API key lacks the "${scope}" scope.`)
        : undefined,
    );
  };
