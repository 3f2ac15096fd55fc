import { createHash } from 'node:crypto';

/** A public JSON Web Key as peers send it; only the members the relay looks at are typed. */
export interface PublicJwk {
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
  readonly [member: string]: unknown;
}

/** The members RFC 7638 hashes for each key type, in the lexicographic order it requires. */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};

export const ADDRESS_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The RFC 7638 JWK thumbprint, SHA-256, base64url without padding (43 characters). */
export function jwkThumbprint(jwk: PublicJwk): string {
  const members = Object.hasOwn(REQUIRED_MEMBERS, jwk.kty) ? REQUIRED_MEMBERS[jwk.kty] : undefined;
  if (!members) throw new Error(`unsupported key type "${String(jwk.kty)}"`);
  const canonical: Record<string, string> = {};
  for (const member of members) {
    const value = jwk[member];
    if (typeof value !== 'string' || value === '') throw new Error(`the ${jwk.kty} key lacks "${member}"`);
    canonical[member] = value;
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

/** A peer's address: the thumbprint of its public signing key. */
export const deriveAddress = (signingKey: PublicJwk): string => jwkThumbprint(signingKey);

export const isAddress = (value: unknown): value is string => typeof value === 'string' && ADDRESS_PATTERN.test(value);
