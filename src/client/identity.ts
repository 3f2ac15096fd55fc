import { CompactSign, compactDecrypt, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { deriveAddress, type PublicJwk } from '../crypto/address.js';
import { EnvelopeError } from './errors.js';

import type { SigningAlgorithm } from '../crypto/signatures.js';

/** What a peer signs with: Ed25519 (the default) or P-256, which is what the iOS Secure Enclave holds. */
export type { SigningAlgorithm };

/**
 * How a content key is wrapped for a recipient: RSA-OAEP-256 under an RSA key (the
 * specification's "RSA-2048 key exchange", the default) or ECDH-ES+A256KW with X25519.
 */
export type KeyWrapAlgorithm = 'RSA-OAEP-256' | 'ECDH-ES+A256KW';

export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['EdDSA', 'ES256'];
export const KEY_WRAP_ALGORITHMS: readonly KeyWrapAlgorithm[] = ['RSA-OAEP-256', 'ECDH-ES+A256KW'];

/** The relay refuses smaller RSA keys, so the client never makes or encrypts to one. */
export const MIN_RSA_BITS = 2048;

const invalidKey = (detail: string, cause?: unknown) =>
  new EnvelopeError('invalid_key', detail, undefined, cause === undefined ? undefined : { cause });

const base64urlString = (jwk: Readonly<Record<string, unknown>>, member: string, what: string): string => {
  const value = jwk[member];
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value))
    throw invalidKey(`The ${what} lacks a base64url "${member}".`);
  return value;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The signing algorithm a JWK is for, from its key type and curve. */
export function signingAlgorithmOf(jwk: unknown): SigningAlgorithm {
  if (!isRecord(jwk)) throw invalidKey('A signing key must be a JWK object.');
  if (jwk['kty'] === 'OKP' && jwk['crv'] === 'Ed25519') return 'EdDSA';
  if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256') return 'ES256';
  throw invalidKey(
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- members of an untrusted JWK, named as String() renders them
    `A signing key is Ed25519 (OKP) or P-256 (EC); this one is ${String(jwk['kty'])} ${String(jwk['crv'] ?? '')}.`.trim(),
  );
}

/** The key wrapping a recipient's encryption JWK calls for; refuses keys the relay would refuse too. */
export function keyWrapAlgorithmOf(jwk: unknown): KeyWrapAlgorithm {
  if (!isRecord(jwk)) throw invalidKey('An encryption key must be a JWK object.');
  if (jwk['kty'] === 'RSA') {
    const bits = Buffer.from(base64urlString(jwk, 'n', 'RSA key'), 'base64url').length * 8;
    base64urlString(jwk, 'e', 'RSA key');
    if (bits < MIN_RSA_BITS)
      throw invalidKey(`An RSA encryption key needs at least ${MIN_RSA_BITS} bits; this one has ${bits}.`);
    if (jwk['alg'] !== undefined && jwk['alg'] !== 'RSA-OAEP-256')
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a member of an untrusted JWK, named as String() renders it
      throw invalidKey(`An RSA encryption key is for RSA-OAEP-256, not ${String(jwk['alg'])}.`);
    return 'RSA-OAEP-256';
  }
  if (jwk['kty'] === 'OKP' && jwk['crv'] === 'X25519') {
    if (Buffer.from(base64urlString(jwk, 'x', 'X25519 key'), 'base64url').length !== 32)
      throw invalidKey('An X25519 key has a 32-byte "x".');
    return 'ECDH-ES+A256KW';
  }
  throw invalidKey(
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- members of an untrusted JWK, named as String() renders them
    `An encryption key is RSA or X25519; this one is ${String(jwk['kty'])} ${String(jwk['crv'] ?? '')}.`.trim(),
  );
}

/**
 * The public signing JWK with only the members RFC 7638 hashes. Sending nothing else keeps the
 * JWS header small and means the key the relay stores is exactly the one the address names.
 */
export function publicSigningJwk(jwk: unknown): PublicJwk {
  const alg = signingAlgorithmOf(jwk);
  const key = jwk as Record<string, unknown>;
  return alg === 'EdDSA'
    ? { kty: 'OKP', crv: 'Ed25519', x: base64urlString(key, 'x', 'Ed25519 key') }
    : { kty: 'EC', crv: 'P-256', x: base64urlString(key, 'x', 'P-256 key'), y: base64urlString(key, 'y', 'P-256 key') };
}

/** The public encryption JWK peers encrypt to; an RSA key names RSA-OAEP-256 as its `alg`. */
export function publicEncryptionJwk(jwk: unknown): PublicJwk {
  const alg = keyWrapAlgorithmOf(jwk);
  const key = jwk as Record<string, unknown>;
  return alg === 'RSA-OAEP-256'
    ? {
        kty: 'RSA',
        n: base64urlString(key, 'n', 'RSA key'),
        e: base64urlString(key, 'e', 'RSA key'),
        alg: 'RSA-OAEP-256',
      }
    : { kty: 'OKP', crv: 'X25519', x: base64urlString(key, 'x', 'X25519 key') };
}

/** A peer's persisted identity: both private keys as JWKs, each naming its algorithm in `alg`. */
export interface ExportedIdentity {
  readonly signing: JWK;
  readonly encryption: JWK;
}

export interface IdentityOptions {
  /** Default `EdDSA` (Ed25519). */
  readonly signing?: SigningAlgorithm;
  /** Default `RSA-OAEP-256`. */
  readonly encryption?: KeyWrapAlgorithm;
  /** RSA modulus in bits; default 2048, at least 2048. */
  readonly rsaModulusLength?: number;
  /**
   * Whether the private keys can be exported with `toJwk()`; default true, because a peer that
   * cannot persist its keys loses its address (and every message sent to it) on restart.
   */
  readonly extractable?: boolean;
}

/** The JWE algorithms an identity accepts when decrypting, by its own key type. */
const ACCEPTED_KEY_MANAGEMENT: Readonly<Record<KeyWrapAlgorithm, string[]>> = {
  'RSA-OAEP-256': ['RSA-OAEP-256'],
  // Direct ECDH-ES is what the API allows for X25519 keys too; accepting it lets other clients
  // (the iOS guide shows both) pick either.
  'ECDH-ES+A256KW': ['ECDH-ES+A256KW', 'ECDH-ES'],
};

async function importPrivate(jwk: unknown, alg: string, extractable: boolean, what: string): Promise<CryptoKey> {
  if (!isRecord(jwk) || typeof jwk['d'] !== 'string')
    throw invalidKey(`The ${what} key must be a private JWK (with "d").`);
  try {
    const key = await importJWK(jwk as JWK, alg, { extractable });
    if (key instanceof Uint8Array || key.type !== 'private') throw new Error('not an asymmetric private key');
    return key;
  } catch (error) {
    if (error instanceof EnvelopeError) throw error;
    throw invalidKey(`The ${what} key could not be imported for ${alg}: ${(error as Error).message}`, error);
  }
}

/**
 * A peer's keys: a signing key, whose thumbprint is the peer's address, and an encryption key
 * that other peers wrap content keys to. The private halves never leave this object except
 * through `toJwk()`; everything that needs them (signing, decrypting) is a method here.
 */
export class PeerIdentity {
  readonly #signingPrivate: CryptoKey;
  readonly #encryptionPrivate: CryptoKey;

  private constructor(
    readonly signingAlgorithm: SigningAlgorithm,
    /** The public signing JWK: what goes in every JWS header, and what the address is the thumbprint of. */
    readonly signingKey: PublicJwk,
    readonly encryptionAlgorithm: KeyWrapAlgorithm,
    /** The public encryption JWK, registered with the relay for others to encrypt to. */
    readonly encryptionKey: PublicJwk,
    signingPrivate: CryptoKey,
    encryptionPrivate: CryptoKey,
    /** RFC 7638 SHA-256 thumbprint of `signingKey`, base64url: the peer's address. */
    readonly address: string = deriveAddress(signingKey),
  ) {
    this.#signingPrivate = signingPrivate;
    this.#encryptionPrivate = encryptionPrivate;
  }

  /** Makes new keys. RSA key generation takes a few tens of milliseconds. */
  static async generate(options: IdentityOptions = {}): Promise<PeerIdentity> {
    const signing = options.signing ?? 'EdDSA';
    const encryption = options.encryption ?? 'RSA-OAEP-256';
    if (!SIGNING_ALGORITHMS.includes(signing)) throw invalidKey(`Signing is EdDSA or ES256, not ${String(signing)}.`);
    if (!KEY_WRAP_ALGORITHMS.includes(encryption))
      throw invalidKey(`Key wrapping is RSA-OAEP-256 or ECDH-ES+A256KW, not ${String(encryption)}.`);
    const modulusLength = options.rsaModulusLength ?? MIN_RSA_BITS;
    if (!Number.isInteger(modulusLength) || modulusLength < MIN_RSA_BITS)
      throw invalidKey(`RSA keys have at least ${MIN_RSA_BITS} bits.`);
    const extractable = options.extractable ?? true;
    const [signingPair, encryptionPair] = await Promise.all([
      generateKeyPair(signing, { crv: signing === 'EdDSA' ? 'Ed25519' : 'P-256', extractable }),
      encryption === 'RSA-OAEP-256'
        ? generateKeyPair('RSA-OAEP-256', { modulusLength, extractable })
        : generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable }),
    ]);
    return new PeerIdentity(
      signing,
      publicSigningJwk(await exportJWK(signingPair.publicKey)),
      encryption,
      publicEncryptionJwk(await exportJWK(encryptionPair.publicKey)),
      signingPair.privateKey,
      encryptionPair.privateKey,
    );
  }

  /** Restores an identity saved with `toJwk()`; `alg` may be absent, the key type then decides. */
  static async fromJwk(exported: ExportedIdentity, options: { extractable?: boolean } = {}): Promise<PeerIdentity> {
    if (!isRecord(exported)) throw invalidKey('An exported identity is {"signing": <JWK>, "encryption": <JWK>}.');
    const extractable = options.extractable ?? true;
    const signingAlg = signingAlgorithmOf(exported.signing);
    const encryptionAlg = keyWrapAlgorithmOf(exported.encryption);
    if (exported.signing.alg !== undefined && exported.signing.alg !== signingAlg) {
      throw invalidKey(`The signing key is a ${signingAlg} key but names alg ${exported.signing.alg}.`);
    }
    if (exported.encryption.alg !== undefined && exported.encryption.alg !== encryptionAlg) {
      throw invalidKey(`The encryption key is a ${encryptionAlg} key but names alg ${exported.encryption.alg}.`);
    }
    const [signingPrivate, encryptionPrivate] = await Promise.all([
      importPrivate(exported.signing, signingAlg, extractable, 'signing'),
      importPrivate(exported.encryption, encryptionAlg, extractable, 'encryption'),
    ]);
    return new PeerIdentity(
      signingAlg,
      publicSigningJwk(exported.signing),
      encryptionAlg,
      publicEncryptionJwk(exported.encryption),
      signingPrivate,
      encryptionPrivate,
    );
  }

  /**
   * Both private keys as JWKs, to persist the identity (store them as secrets: whoever holds
   * them is this peer). Fails if the identity was made with `extractable: false`.
   */
  async toJwk(): Promise<ExportedIdentity> {
    try {
      const [signing, encryption] = await Promise.all([
        exportJWK(this.#signingPrivate),
        exportJWK(this.#encryptionPrivate),
      ]);
      return {
        signing: { ...signing, alg: this.signingAlgorithm },
        encryption: { ...encryption, alg: this.encryptionAlgorithm },
      };
    } catch (error) {
      throw invalidKey(
        'The private keys are not extractable; make the identity with extractable: true to export it.',
        error,
      );
    }
  }

  /** A compact JWS over `payload` (as JSON), with protected header `{alg, jwk}` as the relay requires. */
  async sign(payload: Readonly<Record<string, unknown>>): Promise<string> {
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: this.signingAlgorithm, jwk: { ...this.signingKey } })
      .sign(this.#signingPrivate);
  }

  /**
   * Decrypts a compact JWE addressed to this identity's encryption key. Only A256GCM content
   * encryption and the key management that fits this key are accepted, so a sender (or the
   * relay) cannot steer the decryption to a weaker algorithm.
   */
  async decrypt(jwe: string, messageId?: string): Promise<Uint8Array> {
    try {
      const { plaintext } = await compactDecrypt(jwe, this.#encryptionPrivate, {
        keyManagementAlgorithms: ACCEPTED_KEY_MANAGEMENT[this.encryptionAlgorithm],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      return plaintext;
    } catch (error) {
      throw new EnvelopeError(
        'decryption_failed',
        `The content could not be decrypted: ${(error as Error).message}`,
        messageId,
        { cause: error },
      );
    }
  }
}
