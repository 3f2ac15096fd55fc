import { generateKeyPairSync, sign } from 'node:crypto';
import { ed25519KeyProblem, hasCanonicalS } from '../../../src/crypto/ed25519.js';
import { publicJwk } from '../../helpers/peer.js';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

const littleEndian32 = (value: bigint): Buffer => {
  const bytes = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return bytes;
};
const withSign = (bytes: Buffer): Buffer => {
  const copy = Buffer.from(bytes);
  copy[31] = (copy[31] ?? 0) | 0x80;
  return copy;
};
const hex = (text: string) => Buffer.from(text, 'hex');

// The eight points of small order, by their canonical encodings (as libsodium's blocklist lists
// them): order 1 (y = 1), 2 (y = p - 1), 4 (y = 0, both signs) and 8 (two y values, both signs).
const ORDER_8_A = hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
const ORDER_8_B = hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
const SMALL_ORDER: [string, Buffer][] = [
  ['the identity (y = 1)', littleEndian32(1n)],
  ['order 2 (y = p - 1)', littleEndian32(P - 1n)],
  ['order 4 (y = 0)', littleEndian32(0n)],
  ['order 4 (y = 0, sign bit set)', withSign(littleEndian32(0n))],
  ['order 8 (a)', ORDER_8_A],
  ['order 8 (a, other sign)', withSign(ORDER_8_A)],
  ['order 8 (b)', ORDER_8_B],
  ['order 8 (b, other sign)', withSign(ORDER_8_B)],
];

describe('ed25519KeyProblem', () => {
  it('accepts real public keys', () => {
    for (let i = 0; i < 20; i++) {
      const x = Buffer.from(publicJwk(generateKeyPairSync('ed25519').publicKey, 'Ed25519').x as string, 'base64url');
      expect(ed25519KeyProblem(x)).toBeUndefined();
    }
  });

  it.each(SMALL_ORDER)('refuses %s as small_order', (_label, encoded) => {
    expect(ed25519KeyProblem(encoded)).toBe('small_order');
  });

  it('refuses y >= p as non_canonical, also where y - p is a small-order point', () => {
    expect(ed25519KeyProblem(littleEndian32(P))).toBe('non_canonical'); // y = 0 spelled p
    expect(ed25519KeyProblem(littleEndian32(P + 1n))).toBe('non_canonical'); // the identity spelled p + 1
    expect(ed25519KeyProblem(littleEndian32(2n ** 255n - 1n))).toBe('non_canonical');
  });

  it('refuses x = 0 with its sign bit set as non_canonical', () => {
    expect(ed25519KeyProblem(withSign(littleEndian32(1n)))).toBe('non_canonical');
    expect(ed25519KeyProblem(withSign(littleEndian32(P - 1n)))).toBe('non_canonical');
  });

  it('refuses a y with no point on the curve, and a key that is not 32 bytes', () => {
    expect(ed25519KeyProblem(littleEndian32(2n))).toBe('not_on_curve');
    expect(ed25519KeyProblem(Buffer.alloc(31))).toBe('length');
    expect(ed25519KeyProblem(Buffer.alloc(33))).toBe('length');
  });
});

describe('hasCanonicalS', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const signature = sign(null, Buffer.from('relay'), privateKey);

  it('accepts a real signature', () => {
    expect(hasCanonicalS(signature)).toBe(true);
  });

  it('refuses S + L, S = L and S of all ones', () => {
    const s = signature.subarray(32).reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
    for (const bad of [s + L, L, 2n ** 256n - 1n]) {
      expect(hasCanonicalS(Buffer.concat([signature.subarray(0, 32), littleEndian32(bad)]))).toBe(false);
    }
    expect(hasCanonicalS(Buffer.concat([signature.subarray(0, 32), littleEndian32(L - 1n)]))).toBe(true);
  });
});
