import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import sodium from 'sodium-native';
import { AppError } from '../errors/app-error.js';
import { deriveAddress, type PublicJwk } from './address.js';
import { ed25519KeyProblem, hasCanonicalS } from './ed25519.js';

/** The algorithms a peer may sign with, and the key each needs. */
const ALGORITHMS = {
  EdDSA: { kty: 'OKP', crv: 'Ed25519', digest: null, signatureBytes: 64, coordinates: ['x'] },
  ES256: { kty: 'EC', crv: 'P-256', digest: 'sha256', signatureBytes: 64, coordinates: ['x', 'y'] },
} as const;

export type SigningAlgorithm = keyof typeof ALGORITHMS;

export interface VerifiedJws {
  /** The signer's address, derived from the `jwk` in the protected header. */
  readonly address: string;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
  readonly payload: Readonly<Record<string, unknown>>;
}

/**
 * The longest protected header accepted, in base64url characters. The relay's clients send about
 * 200 (alg and a P-256 jwk); the bound leaves room for kid, typ and the like, and keeps what an
 * attacker can make the relay decode and hold small.
 */
export const MAX_HEADER_CHARS = 1024;

/** How many signers the cache holds, and how many bytes at most (see signerBytes). */
export const SIGNER_CACHE = { maxEntries: 20_000, maxBytes: 16 * 1024 * 1024 } as const;

/** How far a payload's `iat` may lie behind and ahead of this server's clock, in seconds. */
export interface Freshness {
  readonly maxAgeSeconds: number;
  readonly maxFutureSeconds: number;
}

export const DEFAULT_FRESHNESS: Freshness = { maxAgeSeconds: 300, maxFutureSeconds: 60 };

interface Signer {
  readonly alg: SigningAlgorithm;
  readonly spec: (typeof ALGORITHMS)[SigningAlgorithm];
  readonly jwk: PublicJwk;
  readonly address: string;
  readonly publicKey: KeyObject;
  /** The raw 32-byte Ed25519 key, checked by libsodium (EdDSA signers only). */
  readonly rawKey: Buffer | undefined;
}

// A cached signer is its header text (UTF-16 in V8's worst case), the decoded jwk of about the
// same size, and a KeyObject with its native key of a few hundred bytes.
const signerBytes = (encodedHeader: string): number => encodedHeader.length * 4 + 1024;

const badSignature = (detail: string) => new AppError('bad_signature', detail);

const decodeJson = (part: string, what: string): unknown => {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw badSignature(`The JWS ${what} is not base64url-encoded JSON.`);
  }
};

const BASE64URL = /^[A-Za-z0-9_-]*$/;

const ED25519_PROBLEMS = {
  length: 'its "x" is not 32 bytes',
  non_canonical: 'its "x" is not the canonical encoding of a point',
  small_order: 'its "x" is a point of small order, which any signature can match',
} as const;

/**
 * Verifies compact JWS signatures on the hot path with node:crypto. The key comes from the `jwk`
 * in the protected header and the signer's address is its thumbprint, so no lookup is needed.
 * Signers whose signature verified are cached by header text, bounded by entries and by bytes:
 * one verify then costs the signature check alone, and headers that never verified take no room.
 */
export class SignatureVerifier {
  private readonly signers = new LRUCache<string, Signer>({
    max: SIGNER_CACHE.maxEntries,
    maxSize: SIGNER_CACHE.maxBytes,
    sizeCalculation: (_signer, encodedHeader) => signerBytes(encodedHeader),
  });

  private readonly freshness: Freshness;

  constructor(
    private readonly now: () => number = Date.now,
    freshness: Partial<Freshness> = {},
  ) {
    this.freshness = { ...DEFAULT_FRESHNESS, ...freshness };
  }

  /** How many signers are cached and their estimated bytes (for tests and the heap benchmark). */
  cacheUsage(): { entries: number; bytes: number } {
    return { entries: this.signers.size, bytes: this.signers.calculatedSize };
  }

  verify(compact: unknown): VerifiedJws {
    if (typeof compact !== 'string') throw badSignature('The signature must be a compact JWS string.');
    const parts = compact.split('.');
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) {
      throw badSignature('The signature is not a compact JWS (three base64url parts joined by ".").');
    }
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
    const cached = this.signers.get(encodedHeader);
    const signer = cached ?? this.signerOf(encodedHeader);
    const { spec } = signer;
    const signature = Buffer.from(encodedSignature, 'base64url');
    if (signature.length !== spec.signatureBytes)
      throw badSignature(`An ${signer.alg} signature is ${spec.signatureBytes} bytes.`);
    // RFC 8032 5.1.7: S must be below L, or one signature has several valid encodings.
    if (signer.alg === 'EdDSA' && !hasCanonicalS(signature))
      throw badSignature('The EdDSA signature is not canonical (its S is not below the group order).');
    const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'ascii');
    // libsodium checks an Ed25519 signature in less than half the CPU of node:crypto, whose
    // OpenSSL 3 one-shot verify sets up a context per call; the check is the ingress's largest cost.
    const ok =
      signer.rawKey !== undefined
        ? sodium.crypto_sign_verify_detached(signature, signed, signer.rawKey)
        : verify(spec.digest, signed, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    if (!ok) throw badSignature('The signature does not verify with the key in its header.');
    if (!cached) this.signers.set(encodedHeader, signer);

    const payload = decodeJson(encodedPayload, 'payload');
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw badSignature('The JWS payload must be a JSON object.');
    }
    return { address: signer.address, alg: signer.alg, jwk: signer.jwk, payload: payload as Record<string, unknown> };
  }

  /** The signer a protected header names: its algorithm, key, address and imported KeyObject. */
  private signerOf(encodedHeader: string): Signer {
    if (encodedHeader.length > MAX_HEADER_CHARS) {
      throw badSignature(
        `The JWS protected header is ${encodedHeader.length} characters; at most ${MAX_HEADER_CHARS} are accepted.`,
      );
    }
    const header = decodeJson(encodedHeader, 'header');
    if (typeof header !== 'object' || header === null) throw badSignature('The JWS header must be a JSON object.');
    const { alg, jwk, crit } = header as { alg?: unknown; jwk?: unknown; crit?: unknown };
    if (crit !== undefined) throw badSignature('The JWS header must not carry "crit" extensions.');
    if (typeof alg !== 'string' || !Object.hasOwn(ALGORITHMS, alg))
      throw badSignature('The JWS "alg" must be EdDSA or ES256.');
    const spec = ALGORITHMS[alg as SigningAlgorithm];
    if (typeof jwk !== 'object' || jwk === null)
      throw badSignature('The JWS header must hold the signer\'s public "jwk".');
    const key = jwk as PublicJwk;
    if (key.kty !== spec.kty || key.crv !== spec.crv)
      throw badSignature(`An ${alg} signature needs a ${spec.kty} ${spec.crv} key.`);
    if ('d' in key) throw badSignature('The "jwk" in the JWS header must be a public key; it holds a private part.');
    const coordinates: Record<string, Buffer> = {};
    for (const member of spec.coordinates) {
      const value = key[member];
      const bytes = typeof value === 'string' && value.length === 43 ? Buffer.from(value, 'base64url') : undefined;
      // The exact re-encoding, or one key would have several spellings and so several addresses.
      if (bytes?.length !== 32 || bytes.toString('base64url') !== value) {
        throw badSignature(`The "jwk" member "${member}" must be 32 bytes in unpadded base64url (43 characters).`);
      }
      coordinates[member] = bytes;
    }
    if (spec.kty === 'OKP') {
      const problem = ed25519KeyProblem(coordinates['x'] as Buffer);
      if (problem) throw badSignature(`The "jwk" is not a usable Ed25519 public key: ${ED25519_PROBLEMS[problem]}.`);
    }
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: { kty: key.kty, crv: key.crv, x: key.x, y: key.y }, format: 'jwk' });
    } catch {
      throw badSignature(`The "jwk" is not a point on ${spec.crv}.`);
    }
    const rawKey = spec.kty === 'OKP' ? coordinates['x'] : undefined;
    return { alg: alg as SigningAlgorithm, spec, jwk: key, address: deriveAddress(key), publicKey, rawKey };
  }

  /** Checks the payload's `iat` (seconds): at most 5 minutes old, and at most a little ahead of this server's clock. */
  checkFreshness(payload: Readonly<Record<string, unknown>>): void {
    const iat = payload['iat'];
    if (typeof iat !== 'number' || !Number.isFinite(iat))
      throw badSignature('The signed payload must hold "iat", in seconds.');
    const age = this.now() / 1000 - iat;
    const { maxAgeSeconds, maxFutureSeconds } = this.freshness;
    if (age > maxAgeSeconds) {
      throw new AppError(
        'stale_signature',
        `The signature's iat is ${Math.round(age)} s old; at most ${maxAgeSeconds} s is accepted. Sign again with the current time.`,
      );
    }
    if (-age > maxFutureSeconds) {
      throw new AppError(
        'stale_signature',
        `The signature's iat is ${Math.round(-age)} s ahead of the server's clock; at most ${maxFutureSeconds} s is accepted. Check the client's clock.`,
      );
    }
  }
}
