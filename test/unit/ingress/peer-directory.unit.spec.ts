import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { AppError } from '../../../src/errors/app-error.js';
import { checkEncryptionKey } from '../../../src/ingress/peer-directory.js';
import { expectAppError } from '../../helpers/errors.js';

const rsaPublicJwk = (modulusLength: number): JsonWebKey =>
  generateKeyPairSync('rsa', { modulusLength }).publicKey.export({ format: 'jwk' });

const expectRefused = (value: unknown): AppError =>
  expectAppError(() => checkEncryptionKey(value), 'invalid_request', 400);

describe('checkEncryptionKey', () => {
  const rsa2048 = rsaPublicJwk(2048);
  const x25519Pair = generateKeyPairSync('x25519');
  const x25519 = x25519Pair.publicKey.export({ format: 'jwk' });

  it('accepts an RSA 2048 public key and returns it', () => {
    expect(rsa2048.kty).toBe('RSA');
    expect(checkEncryptionKey(rsa2048)).toEqual(rsa2048);
  });

  it('accepts an RSA 2048 public key marked for RSA-OAEP-256', () => {
    const jwk = { ...rsa2048, alg: 'RSA-OAEP-256', use: 'enc' };
    expect(checkEncryptionKey(jwk)).toEqual(jwk);
  });

  it('accepts an RSA 3072 public key', () => {
    const jwk = rsaPublicJwk(3072);
    expect(checkEncryptionKey(jwk)).toEqual(jwk);
  });

  it('accepts an X25519 public key and returns it', () => {
    expect(x25519).toMatchObject({ kty: 'OKP', crv: 'X25519' });
    expect(checkEncryptionKey(x25519)).toEqual(x25519);
  });

  it('refuses RSA 1024, saying how many bits it has', () => {
    const error = expectRefused(rsaPublicJwk(1024));
    expect(error.extensions['field']).toBe('encryption_key');
    expect(error.message).toMatch(/at least 2048 bits; this one has 1024/);
  });

  it.each(['RSA1_5', 'RSA-OAEP', 'RS256'])('refuses RSA with alg %s', (alg) => {
    const error = expectRefused({ ...rsa2048, alg });
    expect(error.extensions['field']).toBe('encryption_key');
    expect(error.message).toMatch(/RSA-OAEP-256/);
  });

  it('refuses a private RSA key', () => {
    const privateJwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    expect(privateJwk.d).toBeDefined();
    const error = expectRefused(privateJwk);
    expect(error.extensions['field']).toBe('encryption_key');
    expect(error.message).toMatch(/private part/);
  });

  it('refuses a private X25519 key', () => {
    const privateJwk = x25519Pair.privateKey.export({ format: 'jwk' });
    expect(expectRefused(privateJwk).message).toMatch(/private part/);
  });

  it('refuses a public key with only "p" of the private members added', () => {
    expect(expectRefused({ ...rsa2048, p: 'AQAB' }).message).toMatch(/private part/);
  });

  it('refuses X25519 with a 31-byte x', () => {
    const x = Buffer.from(x25519.x as string, 'base64url')
      .subarray(0, 31)
      .toString('base64url');
    const error = expectRefused({ ...x25519, x });
    expect(error.extensions['field']).toBe('encryption_key');
    expect(error.message).toMatch(/32-byte/);
  });

  it('refuses X25519 with a 33-byte x', () => {
    const x = Buffer.concat([Buffer.from(x25519.x as string, 'base64url'), Buffer.from([0])]).toString('base64url');
    expect(expectRefused({ ...x25519, x }).message).toMatch(/32-byte/);
  });

  it('refuses X25519 without x, naming x', () => {
    const error = expectRefused({ kty: 'OKP', crv: 'X25519' });
    expect(error.extensions['field']).toBe('x');
  });

  it('refuses RSA without n or e, naming the member', () => {
    const { n: _n, ...withoutN } = rsa2048;
    const { e: _e, ...withoutE } = rsa2048;
    expect(expectRefused(withoutN).extensions['field']).toBe('n');
    expect(expectRefused(withoutE).extensions['field']).toBe('e');
  });

  it('refuses an Ed25519 key (a signing key, not an encryption key)', () => {
    const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    const error = expectRefused(ed);
    expect(error.extensions['field']).toBe('encryption_key');
    expect(error.message).toMatch(/RSA .* or an X25519/);
  });

  it('refuses a P-256 key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    expect(expectRefused(ec).extensions['field']).toBe('encryption_key');
  });

  it.each<[string, unknown]>([
    ['a string', JSON.stringify({ kty: 'OKP', crv: 'X25519', x: 'a' })],
    ['null', null],
    ['undefined', undefined],
    ['an array', [{ kty: 'RSA' }]],
    ['a number', 2048],
  ])('refuses %s', (_label, value) => {
    const error = expectRefused(value);
    expect(error.extensions['field']).toBe('encryption_key');
    expect(error.message).toMatch(/JSON object/);
  });
});
