/**
 * The checks of RFC 8032 section 5.1.7 that node:crypto (OpenSSL) leaves out. OpenSSL verifies
 * with the cofactorless equation and accepts any public key that decodes, so a small-order key
 * (the identity, 01 00..00, for one) verifies a forged signature without any private key.
 */

const P = 2n ** 255n - 19n;
/** The order of the base point: a signature's S must be below it. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** A little-endian unsigned integer. */
const littleEndian = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).reverse().toString('hex') || '0'}`);

/**
 * The y coordinates of the eight points of small order: 1 (the identity), p - 1 (order 2), 0
 * (the two points of order 4) and ±y8 (the four of order 8). Every other y is a point of large
 * order or no point at all (which OpenSSL refuses when it verifies), so comparing y, instead of
 * decoding the point and multiplying it by 8, costs a few comparisons per new key rather than a
 * modular square root: test/unit/crypto/ed25519.unit.spec.ts checks the list against that math.
 */
const Y8 = littleEndian(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'));
const SMALL_ORDER_Y: ReadonlySet<bigint> = new Set([1n, P - 1n, 0n, Y8, P - Y8]);

export type Ed25519KeyProblem = 'length' | 'non_canonical' | 'small_order';

/**
 * What is wrong with a 32-byte Ed25519 public key: not 32 bytes, a non-canonical encoding (y not
 * below p, or x = 0 written with its sign bit set), or a point of small order. Undefined if none.
 */
export function ed25519KeyProblem(encoded: Uint8Array): Ed25519KeyProblem | undefined {
  if (encoded.length !== 32) return 'length';
  const signBit = ((encoded[31] ?? 0) & 0x80) !== 0;
  const y = littleEndian(encoded) & ((1n << 255n) - 1n);
  if (y >= P) return 'non_canonical';
  // x = 0 exactly when y = ±1; its only encoding has the sign bit clear.
  if (signBit && (y === 1n || y === P - 1n)) return 'non_canonical';
  return SMALL_ORDER_Y.has(y) ? 'small_order' : undefined;
}

/** L's 32 bytes, little-endian, as S is written. */
const L_BYTES = Buffer.from(L.toString(16).padStart(64, '0'), 'hex').reverse();

/** True if a 64-byte Ed25519 signature's S (its second half, little-endian) is below L, as RFC 8032 requires. */
export function hasCanonicalS(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  // Compared from the most significant byte down: once per message, so no BigInt.
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i] as number;
    const l = L_BYTES[i] as number;
    if (s !== l) return s < l;
  }
  return false;
}
