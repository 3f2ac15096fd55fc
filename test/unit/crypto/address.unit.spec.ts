import { generateKeyPair, exportJWK, calculateJwkThumbprint } from 'jose';
import {
  ADDRESS_PATTERN,
  deriveAddress,
  isAddress,
  jwkThumbprint,
  type PublicJwk,
} from '../../../src/crypto/address.js';

/** RFC 7638 section 3.1: the example RSA key and its SHA-256 thumbprint. */
const RFC7638_N =
  '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
const RFC7638_THUMBPRINT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const rfcKey: PublicJwk = { kty: 'RSA', n: RFC7638_N, e: 'AQAB' };

describe('jwkThumbprint', () => {
  it('gives the RFC 7638 section 3.1 thumbprint for the example RSA key', () => {
    expect(jwkThumbprint(rfcKey)).toBe(RFC7638_THUMBPRINT);
  });

  it('derives the address as the thumbprint', () => {
    expect(deriveAddress(rfcKey)).toBe(RFC7638_THUMBPRINT);
  });

  it('ignores member order and the optional members alg, kid and use', () => {
    const reordered: PublicJwk = { e: 'AQAB', n: RFC7638_N, kty: 'RSA' };
    const decorated: PublicJwk = { alg: 'RS256', kid: '2011-04-29', use: 'sig', n: RFC7638_N, kty: 'RSA', e: 'AQAB' };
    expect(jwkThumbprint(reordered)).toBe(RFC7638_THUMBPRINT);
    expect(jwkThumbprint(decorated)).toBe(RFC7638_THUMBPRINT);
  });

  it('changes when a required member changes', () => {
    expect(jwkThumbprint({ kty: 'RSA', n: RFC7638_N, e: 'AQAC' })).not.toBe(RFC7638_THUMBPRINT);
  });

  it('is 43 characters of base64url, without padding', () => {
    const thumbprint = jwkThumbprint(rfcKey);
    expect(thumbprint).toHaveLength(43);
    expect(thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ADDRESS_PATTERN.test(thumbprint)).toBe(true);
  });

  it.each<[string, PublicJwk]>([
    ['RSA without n', { kty: 'RSA', e: 'AQAB' }],
    ['RSA without e', { kty: 'RSA', n: RFC7638_N }],
    ['RSA with an empty n', { kty: 'RSA', n: '', e: 'AQAB' }],
    ['RSA with a numeric e', { kty: 'RSA', n: RFC7638_N, e: 65537 as unknown as string }],
    ['OKP without x', { kty: 'OKP', crv: 'Ed25519' }],
    ['OKP without crv', { kty: 'OKP', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }],
    ['EC without y', { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU' }],
    [
      'EC without crv',
      { kty: 'EC', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
    ],
  ])('throws for %s', (_label, jwk) => {
    expect(() => jwkThumbprint(jwk)).toThrow(/lacks/);
  });

  it('throws for an unsupported or missing key type', () => {
    expect(() => jwkThumbprint({ kty: 'oct', k: 'AAAA' })).toThrow(/unsupported key type "oct"/);
    expect(() => jwkThumbprint({} as PublicJwk)).toThrow(/unsupported key type/);
  });

  it('agrees with jose for a fresh Ed25519 key', async () => {
    const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const jwk = await exportJWK(publicKey);
    expect(jwk.kty).toBe('OKP');
    expect(jwkThumbprint(jwk as PublicJwk)).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
  });

  it('agrees with jose for a fresh P-256 key', async () => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    expect(jwk.kty).toBe('EC');
    expect(jwkThumbprint(jwk as PublicJwk)).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
  });

  it('agrees with jose for the RFC example key', async () => {
    expect(await calculateJwkThumbprint({ kty: 'RSA', n: RFC7638_N, e: 'AQAB' }, 'sha256')).toBe(jwkThumbprint(rfcKey));
  });
});

describe('isAddress', () => {
  it('accepts a thumbprint', () => {
    expect(isAddress(RFC7638_THUMBPRINT)).toBe(true);
    expect(isAddress('_'.repeat(43))).toBe(true);
    expect(isAddress('-'.repeat(43))).toBe(true);
  });

  it.each<[string, unknown]>([
    ['42 characters', RFC7638_THUMBPRINT.slice(0, 42)],
    ['44 characters', `${RFC7638_THUMBPRINT}A`],
    ['padding', `${RFC7638_THUMBPRINT.slice(0, 42)}=`],
    ['standard base64 "+"', `${RFC7638_THUMBPRINT.slice(0, 42)}+`],
    ['standard base64 "/"', `${RFC7638_THUMBPRINT.slice(0, 42)}/`],
    ['a trailing newline', `${RFC7638_THUMBPRINT}\n`],
    ['an empty string', ''],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', { address: RFC7638_THUMBPRINT }],
  ])('refuses %s', (_label, value) => {
    expect(isAddress(value)).toBe(false);
  });
});
