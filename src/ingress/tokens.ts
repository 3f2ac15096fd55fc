import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { AppError } from '../errors/app-error.js';
import type { SignatureVerifier } from '../crypto/signatures.js';
import type { Pool } from '../postgres/pool.js';
import type { Redis } from '../redis/client.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import type { AccessToken, Challenge } from '../api/auth.js';

const NONCE_SECONDS = 300;
const ISSUER = 'relay';
const KEY_RELOAD_MS = 60_000;
const JWKS_RELOAD_MS = 5_000;
/**
 * A token naming a key id this node does not hold re-reads the keys (another node may have
 * rotated), but at most once a second: made-up ids cannot turn into one Postgres query each.
 */
export const UNKNOWN_KID_RELOAD_MS = 1_000;

type JoseKey = Awaited<ReturnType<typeof importJWK>>;

interface SigningKey {
  readonly kid: string;
  readonly privateKey: JoseKey;
  readonly publicJwk: JWK;
  readonly verifyKey: JoseKey;
  readonly createdAt: number;
}

/**
 * Address-bound access tokens. A peer asks for a nonce, signs `{address, nonce, iat}` with its
 * signing key (the same compact JWS form as messages), and gets a JWT whose `sub` is its address.
 * Nonces live in Redis and are used once (GETDEL). The server's signing keys live in Postgres so
 * every ingress node shares them; a rotation adds a key and retires the old one only after the
 * longest token it could have signed has expired, so nobody is logged out.
 */
export class TokenService {
  private keys: SigningKey[] = [];
  private loadedAt = 0;
  private unknownKidReloadAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;

  private readonly redisKeys: RedisKeys;

  constructor(
    private readonly deps: {
      readonly pool: Pool;
      readonly redis: Redis;
      readonly redisPrefix: string;
      readonly verifier: SignatureVerifier;
      readonly ttlSeconds: number;
    },
  ) {
    this.redisKeys = redisKeys(deps.redisPrefix);
  }

  async challenge({ address }: { readonly address: string }): Promise<Challenge> {
    const nonce = randomBytes(24).toString('base64url');
    await this.deps.redis.set(this.nonceKey(nonce), address, 'EX', NONCE_SECONDS);
    return { nonce, expires_at: new Date(Date.now() + NONCE_SECONDS * 1000).toISOString() };
  }

  async issue({ proof }: { readonly proof: string }): Promise<AccessToken> {
    const verified = this.deps.verifier.verify(proof);
    if (verified.payload['address'] !== verified.address) {
      throw new AppError('bad_signature', 'The proof\'s "address" is not the thumbprint of the signing key.');
    }
    this.deps.verifier.checkFreshness(verified.payload);
    const nonce = verified.payload['nonce'];
    if (typeof nonce !== 'string' || nonce.length > 64)
      throw new AppError('invalid_nonce', 'The proof must hold the "nonce" from /auth/challenge.');
    const owner = await this.deps.redis.getdel(this.nonceKey(nonce));
    if (owner !== verified.address)
      throw new AppError(
        'invalid_nonce',
        'The nonce is unknown, already used, expired, or was issued for another address.',
      );

    const key = await this.currentKey();
    const accessToken = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(verified.address)
      .setIssuedAt()
      .setExpirationTime(`${this.deps.ttlSeconds}s`)
      .sign(key.privateKey);
    return { access_token: accessToken, token_type: 'Bearer', expires_in: this.deps.ttlSeconds };
  }

  /** The address a token was issued to; 401 invalid_token if it is not a valid, unexpired token of ours. */
  async verify(token: string): Promise<string> {
    try {
      const { payload } = await jwtVerify(token, async (header) => (await this.keyById(header.kid ?? '')).verifyKey, {
        issuer: ISSUER,
        algorithms: ['EdDSA'],
      });
      if (typeof payload.sub !== 'string') throw new Error('no subject');
      return payload.sub;
    } catch {
      throw new AppError(
        'invalid_token',
        'The bearer token is invalid or expired; get a new one from /api/v1/auth/token.',
      );
    }
  }

  /** The public keys tokens may be verified with (/.well-known/jwks.json). */
  async jwks(): Promise<{ keys: JWK[] }> {
    // Fresher than the signing cache, so a rotation is published within seconds.
    if (Date.now() - this.loadedAt > JWKS_RELOAD_MS) await this.load(true);
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /** Adds a new signing key; older ones keep verifying until the tokens they signed have expired. */
  async rotate(): Promise<string> {
    const kid = await this.createKey();
    await this.deps.pool.query(
      'UPDATE token_signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL',
      [kid],
    );
    await this.load(true);
    return kid;
  }

  private nonceKey(nonce: string) {
    return this.redisKeys.nonce(nonce);
  }

  private async currentKey(): Promise<SigningKey> {
    await this.load(false);
    if (this.keys.length === 0) {
      await this.createKey();
      await this.load(true);
    }
    const newest = this.keys.reduce<SigningKey | undefined>(
      (a, b) => (!a || b.createdAt > a.createdAt ? b : a),
      undefined,
    );
    if (!newest) throw new Error('no token signing key');
    return newest;
  }

  private async keyById(kid: string): Promise<SigningKey> {
    await this.load(false);
    let key = this.keys.find((k) => k.kid === kid);
    if (!key && Date.now() - this.unknownKidReloadAt >= UNKNOWN_KID_RELOAD_MS) {
      this.unknownKidReloadAt = Date.now();
      await this.load(true);
      key = this.keys.find((k) => k.kid === kid);
    }
    if (!key) throw new Error('unknown kid');
    return key;
  }

  private async createKey(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
    const kid = randomBytes(8).toString('base64url');
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
    await this.deps.pool.query('INSERT INTO token_signing_keys (kid, private_jwk, public_jwk) VALUES ($1, $2, $3)', [
      kid,
      await exportJWK(privateKey),
      publicJwk,
    ]);
    return kid;
  }

  private async load(force: boolean): Promise<void> {
    // A forced read must see what was written before it; a routine one is shared by the requests
    // that find the keys due at the same moment.
    if (force) return this.read();
    if (Date.now() - this.loadedAt < KEY_RELOAD_MS) return;
    this.loading ??= this.read().finally(() => (this.loading = undefined));
    await this.loading;
  }

  private async read(): Promise<void> {
    const { rows } = await this.deps.pool.query<{ kid: string; private_jwk: JWK; public_jwk: JWK; created_at: Date }>(
      `SELECT kid, private_jwk, public_jwk, created_at FROM token_signing_keys
        WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)`,
      [this.deps.ttlSeconds + 60],
    );
    this.keys = await Promise.all(
      rows.map(async (r) => ({
        kid: r.kid,
        privateKey: await importJWK(r.private_jwk, 'EdDSA'),
        verifyKey: await importJWK(r.public_jwk, 'EdDSA'),
        publicJwk: r.public_jwk,
        createdAt: r.created_at.getTime(),
      })),
    );
    this.loadedAt = Date.now();
  }
}

/** The bearer token of a request: the Authorization header, or `access_token` for WebSocket clients that cannot set headers. */
export function bearerToken(req: Pick<IncomingMessage, 'headers'>, url?: URL): string | undefined {
  const header = req.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new AppError('invalid_token', 'Send the token as "Authorization: Bearer <token>".');
    return match[1];
  }
  return url?.searchParams.get('access_token') ?? undefined;
}

/** Only a token issued to `address` opens its mailbox. */
export async function authorizeAddress(
  tokens: TokenService,
  token: string | undefined,
  address: string,
): Promise<void> {
  if (!token)
    throw new AppError(
      'missing_token',
      `Reading or acknowledging ${address}'s mailbox needs a bearer token for that address (POST /api/v1/auth/token).`,
    );
  const subject = await tokens.verify(token);
  if (subject !== address) throw new AppError('address_mismatch', 'The bearer token was issued to another address.');
}
