import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { deriveAddress, type PublicJwk } from '../src/crypto/address.js';

/** A sending or receiving peer of the load: an Ed25519 key pair and its address. */
export interface BenchPeer {
  readonly address: string;
  readonly publicJwk: PublicJwk;
  /** The private key as a JWK, so that signing workers can import it. */
  readonly privateJwk: JsonWebKey;
}

// The fixed DER prefixes of an Ed25519 SubjectPublicKeyInfo (12 bytes) and PKCS #8 key (16 bytes):
// the raw 32-byte key follows.
const SPKI_PREFIX = 12;
const PKCS8_PREFIX = 16;

/**
 * Ed25519 key pairs. The keys come out of generateKeyPairSync as DER and the JWKs are built from
 * the raw bytes: on Node 20, exporting a just-generated KeyObject as a JWK can deadlock when a
 * garbage collection runs inside the export (seen here: ExportJWKEdKey holds the key's mutex,
 * the collector finalizes the KeyGenJob, whose destructor takes the same mutex).
 */
export function createPeers(count: number): BenchPeer[] {
  return Array.from({ length: count }, () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    });
    const x = publicKey.subarray(SPKI_PREFIX).toString('base64url');
    const publicJwk: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x };
    return {
      address: deriveAddress(publicJwk),
      publicJwk,
      privateJwk: { kty: 'OKP', crv: 'Ed25519', x, d: privateKey.subarray(PKCS8_PREFIX).toString('base64url') },
    };
  });
}
