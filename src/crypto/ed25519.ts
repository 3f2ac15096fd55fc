/**
 * The checks of RFC 8032 section 5.1.7 that node:crypto (OpenSSL) leaves out. OpenSSL verifies
 * with the cofactorless equation and accepts any public key that decodes, so a small-order key
 * (the identity, 01 00..00, for one) verifies a forged signature without any private key. These
 * checks run once per signer, before its key is imported, and once per signature on S.
 */

const P = 2n ** 255n - 19n;
/** The order of the base point: a signature's S must be below it. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

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
const SQRT_MINUS_ONE = power(2n, (P - 1n) / 4n);

/** A little-endian unsigned integer. */
const littleEndian = (bytes: Uint8Array): bigint => {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i] ?? 0);
  return value;
};

export type Ed25519KeyProblem = 'length' | 'non_canonical' | 'not_on_curve' | 'small_order';

/** Decodes a point (RFC 8032 5.1.3), refusing an encoding whose y is not below p or whose x = 0 has its sign bit set. */
function decodePoint(encoded: Uint8Array): { x: bigint; y: bigint } | Exclude<Ed25519KeyProblem, 'small_order'> {
  if (encoded.length !== 32) return 'length';
  const sign = ((encoded[31] ?? 0) >> 7) & 1;
  const y = littleEndian(encoded) & ((1n << 255n) - 1n);
  if (y >= P) return 'non_canonical';
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 !== u) {
    if (vx2 !== mod(-u)) return 'not_on_curve';
    x = mod(x * SQRT_MINUS_ONE);
  }
  if (x === 0n && sign === 1) return 'non_canonical';
  if (Number(x & 1n) !== sign) x = P - x;
  return { x, y };
}

/** True if 8·(x, y) is the identity: the point is one of the eight of small order. */
function hasSmallOrder(x: bigint, y: bigint): boolean {
  // Three doublings in projective coordinates (a = -1), no inversions: identity is X = 0, Y = Z.
  let [X, Y, Z] = [x, y, 1n];
  for (let i = 0; i < 3; i++) {
    const A = mod(X * X);
    const B = mod(Y * Y);
    const C = mod(2n * Z * Z);
    const E = mod((X + Y) * (X + Y) - A - B);
    const G = mod(B - A);
    const F = mod(G - C);
    const H = mod(-A - B);
    [X, Y, Z] = [mod(E * F), mod(G * H), mod(F * G)];
  }
  return X === 0n && Y === Z;
}

/** What is wrong with a 32-byte Ed25519 public key, or undefined if it is a canonical point of large order. */
export function ed25519KeyProblem(encoded: Uint8Array): Ed25519KeyProblem | undefined {
  const point = decodePoint(encoded);
  if (typeof point === 'string') return point;
  return hasSmallOrder(point.x, point.y) ? 'small_order' : undefined;
}

/** True if a 64-byte Ed25519 signature's S (its second half, little-endian) is below L, as RFC 8032 requires. */
export const hasCanonicalS = (signature: Uint8Array): boolean => signature.length === 64 && littleEndian(signature.subarray(32)) < L;
