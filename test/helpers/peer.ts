import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { deriveAddress, type PublicJwk } from '../../src/crypto/address.js';

export type Alg = 'EdDSA' | 'ES256';

/**
 * The public JWK built from the key's DER bytes. Exporting freshly generated keys straight to
 * JWK was seen to deadlock node:crypto now and then (a garbage collection inside the export), so
 * the coordinates are taken from the SubjectPublicKeyInfo's tail instead.
 */
export function publicJwk(key: KeyObject, curve: 'Ed25519' | 'X25519' | 'P-256'): PublicJwk {
  const der = key.export({ format: 'der', type: 'spki' });
  if (curve === 'P-256') {
    const point = der.subarray(der.length - 65); // 0x04 || x || y
    return {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
    };
  }
  return { kty: 'OKP', crv: curve, x: der.subarray(der.length - 32).toString('base64url') };
}

/** A peer for tests: a signing key pair, its address, and an encryption public key. */
export class TestPeer {
  private constructor(
    readonly alg: Alg,
    readonly privateKey: KeyObject,
    readonly jwk: PublicJwk,
    readonly address: string,
    readonly encryptionKey: PublicJwk,
  ) {}

  static create(alg: Alg = 'EdDSA'): TestPeer {
    const { privateKey, publicKey } =
      alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicJwk(publicKey, alg === 'EdDSA' ? 'Ed25519' : 'P-256');
    const encryption = publicJwk(generateKeyPairSync('x25519').publicKey, 'X25519');
    return new TestPeer(alg, privateKey, jwk, deriveAddress(jwk), encryption);
  }

  /** A compact JWS over `payload`, with this peer's public key in the header (or `headerJwk`). */
  async sign(payload: object, options: { headerJwk?: PublicJwk; key?: KeyObject; alg?: Alg } = {}): Promise<string> {
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: options.alg ?? this.alg, jwk: { ...(options.headerJwk ?? this.jwk) } })
      .sign(options.key ?? this.privateKey);
  }

  async registration(overrides: Record<string, unknown> = {}): Promise<{ registration: string }> {
    const payload = {
      address: this.address,
      encryption_key: this.encryptionKey,
      connection_info: { transport: 'test' },
      iat: Math.floor(Date.now() / 1000),
      ...overrides,
    };
    return { registration: await this.sign(payload) };
  }

  /** A signed relay request to `to`; `signed` overrides what the signature covers. */
  async message(
    to: string,
    content = `ciphertext-${randomUUID()}`,
    options: { messageId?: string; type?: string; signed?: Record<string, unknown>; signWith?: TestPeer } = {},
  ): Promise<Record<string, string>> {
    const messageId = options.messageId ?? randomUUID();
    const type = options.type ?? 'text';
    const signer = options.signWith ?? this;
    const signature = await signer.sign({
      message_id: messageId,
      from: this.address,
      to,
      type,
      sha256: createHash('sha256').update(content, 'utf8').digest('base64url'),
      iat: Math.floor(Date.now() / 1000),
      ...options.signed,
    });
    return {
      message_id: messageId,
      from_address: this.address,
      to_address: to,
      message_type: type,
      encrypted_content: content,
      signature,
    };
  }
}
