import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AppError } from '../errors/app-error.js';
import { deriveAddress, type PublicJwk } from './address.js';

/** The algorithms a peer may sign with, and the key each needs. */
const ALGORITHMS = {
  EdDSA: { kty: 'OKP', crv: 'Ed25519', digest: null, signatureBytes: 64 },
  ES256: { kty: 'EC', crv: 'P-256', digest: 'sha256', signatureBytes: 64 },
} as const;

export type SigningAlgorithm = keyof typeof ALGORITHMS;

export interface VerifiedJws {
  /** The signer's address, derived from the `jwk` in the protected header. */
  readonly address: string;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
  readonly payload: Readonly<Record<string, unknown>>;
}

const MAX_CACHED_SIGNERS = 50_000;

interface Signer {
  readonly alg: SigningAlgorithm;
  readonly spec: (typeof ALGORITHMS)[SigningAlgorithm];
  readonly jwk: PublicJwk;
  readonly address: string;
  readonly publicKey: KeyObject;
}
const MAX_CLOCK_SKEW_SECONDS = 300;

const badSignature = (detail: string) => new AppError('bad_signature', detail);

const decodeJson = (part: string, what: string): unknown => {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw badSignature(`The JWS ${what} is not base64url-encoded JSON.`);
  }
};

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Verifies compact JWS signatures on the hot path with node:crypto. The key comes from the `jwk`
 * in the protected header and the signer's address is its thumbprint, so no lookup is needed.
 * Decoded headers and imported keys are cached: one verify then costs the signature check alone.
 */
export class SignatureVerifier {
  private readonly signers = new Map<string, Signer>();

  constructor(private readonly now: () => number = Date.now) {}

  verify(compact: unknown): VerifiedJws {
    if (typeof compact !== 'string') throw badSignature('The signature must be a compact JWS string.');
    const parts = compact.split('.');
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) {
      throw badSignature('The signature is not a compact JWS (three base64url parts joined by ".").');
    }
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
    const signer = this.signerOf(encodedHeader);
    const { spec } = signer;
    const signature = Buffer.from(encodedSignature, 'base64url');
    if (signature.length !== spec.signatureBytes) throw badSignature(`An ${signer.alg} signature is ${spec.signatureBytes} bytes.`);
    const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'ascii');
    const ok =
      spec.digest === null
        ? verify(null, signed, signer.publicKey, signature)
        : verify(spec.digest, signed, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    if (!ok) throw badSignature('The signature does not verify with the key in its header.');

    const payload = decodeJson(encodedPayload, 'payload');
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw badSignature('The JWS payload must be a JSON object.');
    }
    return { address: signer.address, alg: signer.alg, jwk: signer.jwk, payload: payload as Record<string, unknown> };
  }

  /**
   * The signer a protected header names: its algorithm, key, address and imported KeyObject. A
   * peer signs every message with the same header, so the decoded result is cached by the
   * header's exact text: a repeat costs one map lookup instead of a decode, a hash and an import.
   */
  private signerOf(encodedHeader: string): Signer {
    const cached = this.signers.get(encodedHeader);
    if (cached) return cached;
    const header = decodeJson(encodedHeader, 'header');
    if (typeof header !== 'object' || header === null) throw badSignature('The JWS header must be a JSON object.');
    const { alg, jwk, crit } = header as { alg?: unknown; jwk?: unknown; crit?: unknown };
    if (crit !== undefined) throw badSignature('The JWS header must not carry "crit" extensions.');
    if (typeof alg !== 'string' || !Object.hasOwn(ALGORITHMS, alg)) throw badSignature('The JWS "alg" must be EdDSA or ES256.');
    const spec = ALGORITHMS[alg as SigningAlgorithm];
    if (typeof jwk !== 'object' || jwk === null) throw badSignature('The JWS header must hold the signer\'s public "jwk".');
    const key = jwk as PublicJwk;
    if (key.kty !== spec.kty || key.crv !== spec.crv) throw badSignature(`An ${alg} signature needs a ${spec.kty} ${spec.crv} key.`);
    if ('d' in key) throw badSignature('The "jwk" in the JWS header must be a public key; it holds a private part.');
    let address: string;
    let publicKey: KeyObject;
    try {
      address = deriveAddress(key);
      publicKey = createPublicKey({ key: { kty: key.kty, crv: key.crv, x: key.x, y: key.y }, format: 'jwk' });
    } catch (error) {
      throw badSignature(`The "jwk" is not a valid public key: ${(error as Error).message}.`);
    }
    const signer: Signer = { alg: alg as SigningAlgorithm, spec, jwk: key, address, publicKey };
    if (this.signers.size >= MAX_CACHED_SIGNERS) {
      const oldest = this.signers.keys().next().value;
      if (oldest !== undefined) this.signers.delete(oldest);
    }
    this.signers.set(encodedHeader, signer);
    return signer;
  }

  /** Checks the payload's `iat` (seconds) is within 5 minutes of this server's clock. */
  checkFreshness(payload: Readonly<Record<string, unknown>>): void {
    const iat = payload['iat'];
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw badSignature('The signed payload must hold "iat", in seconds.');
    const skew = Math.abs(this.now() / 1000 - iat);
    if (skew > MAX_CLOCK_SKEW_SECONDS) {
      throw new AppError('stale_signature', `The signature's iat is ${Math.round(skew)} s from the server's clock; at most ${MAX_CLOCK_SKEW_SECONDS} s is accepted.`);
    }
  }
}
