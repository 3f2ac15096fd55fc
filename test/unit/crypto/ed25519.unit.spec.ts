import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
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

// A reference for the checks: decode the point (RFC 8032 5.1.3) and multiply it by the cofactor 8.
const mod = (a: bigint) => ((a % P) + P) % P;
const power = (base: bigint, exponent: bigint): bigint => {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
};
const D = mod(-121665n * power(121666n, P - 2n));
function referenceDecode(encoded: Buffer): { x: bigint; y: bigint } | undefined {
  const y = encoded.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n) & ((1n << 255n) - 1n);
  if (y >= P) return undefined;
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  if (mod(v * x * x) !== u) {
    if (mod(v * x * x) !== mod(-u)) return undefined;
    x = mod(x * power(2n, (P - 1n) / 4n));
  }
  const sign = ((encoded[31] ?? 0) >> 7) & 1;
  if (x === 0n && sign === 1) return undefined;
  return { x: Number(x & 1n) === sign ? x : P - x, y };
}
function referenceSmallOrder({ x, y }: { x: bigint; y: bigint }): boolean {
  let [X, Y, Z] = [x, y, 1n];
  for (let i = 0; i < 3; i++) {
    const [A, B, C] = [mod(X * X), mod(Y * Y), mod(2n * Z * Z)];
    const E = mod((X + Y) * (X + Y) - A - B);
    const G = mod(B - A);
    const F = mod(G - C);
    const H = mod(-A - B);
    [X, Y, Z] = [mod(E * F), mod(G * H), mod(F * G)];
  }
  return X === 0n && Y === Z;
}

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
    const point = referenceDecode(encoded);
    expect(point && referenceSmallOrder(point)).toBe(true);
    expect(ed25519KeyProblem(encoded)).toBe('small_order');
  });

  it('agrees with decoding and multiplying by 8 on real keys and on random encodings', () => {
    for (let i = 0; i < 200; i++) {
      const encoded =
        i % 2 === 0
          ? Buffer.from(publicJwk(generateKeyPairSync('ed25519').publicKey, 'Ed25519').x as string, 'base64url')
          : randomBytes(32);
      const point = referenceDecode(encoded);
      if (point) expect(ed25519KeyProblem(encoded)).toBe(referenceSmallOrder(point) ? 'small_order' : undefined);
      else expect(ed25519KeyProblem(encoded)).not.toBe('small_order');
    }
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

  it('refuses a key that is not 32 bytes', () => {
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
