import { createHmac, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { AppError } from '../../../src/errors/app-error.js';
import { SignatureVerifier } from '../../../src/crypto/signatures.js';
import { publicJwk } from '../../helpers/peer.js';

const encoder = new TextEncoder();
const b64url = (value: string | Buffer | Uint8Array): string => Buffer.from(value).toString('base64url');
const json64 = (value: unknown): string => b64url(JSON.stringify(value));

interface Signer {
  readonly privateKey: KeyObject;
  readonly jwk: JWK;
}

const ed25519 = (): Signer => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, jwk: publicJwk(publicKey, 'Ed25519') };
};

const p256 = (): Signer => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: publicJwk(publicKey, 'P-256') };
};

/** A compact JWS over arbitrary header and payload text, signed with node:crypto. */
function rawJws(header: unknown, payload: string, signer: (input: Buffer) => Buffer): string {
  const signingInput = `${json64(header)}.${b64url(payload)}`;
  return `${signingInput}.${b64url(signer(Buffer.from(signingInput, 'ascii')))}`;
}

const edSign = (key: KeyObject) => (input: Buffer) => sign(null, input, key);
const esSign = (key: KeyObject) => (input: Buffer) => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });

/** Calls `fn` and returns the AppError it throws (failing the test if it throws anything else). */
function appErrorOf(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected an AppError, but nothing was thrown');
}

function expectBadSignature(fn: () => unknown): AppError {
  const error = appErrorOf(fn);
  expect(error.code).toBe('bad_signature');
  expect(error.status).toBe(401);
  expect(error.retriable).toBe(false);
  return error;
}

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const payload = { iat: 1_700_000_000, to: 'someone', nested: { n: 1 } };

describe('SignatureVerifier.verify', () => {
  let edKeys: { privateKey: PrivateKey; jwk: JWK };
  let esKeys: { privateKey: PrivateKey; jwk: JWK };

  beforeAll(async () => {
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    edKeys = { privateKey: ed.privateKey, jwk: await exportJWK(ed.publicKey) };
    const es = await generateKeyPair('ES256', { extractable: true });
    esKeys = { privateKey: es.privateKey, jwk: await exportJWK(es.publicKey) };
  });

  const joseSign = (alg: string, jwk: JWK, privateKey: PrivateKey, body: unknown = payload) =>
    new CompactSign(encoder.encode(JSON.stringify(body))).setProtectedHeader({ alg, jwk }).sign(privateKey);

  it('accepts an EdDSA (Ed25519) JWS and returns the derived address and the payload', async () => {
    const jws = await joseSign('EdDSA', edKeys.jwk, edKeys.privateKey);
    const verified = new SignatureVerifier().verify(jws);
    expect(verified.alg).toBe('EdDSA');
    expect(verified.address).toBe(await calculateJwkThumbprint(edKeys.jwk, 'sha256'));
    expect(verified.payload).toEqual(payload);
    expect(verified.jwk).toEqual(edKeys.jwk);
  });

  it('accepts an ES256 (P-256) JWS and returns the derived address and the payload', async () => {
    const jws = await joseSign('ES256', esKeys.jwk, esKeys.privateKey);
    const verified = new SignatureVerifier().verify(jws);
    expect(verified.alg).toBe('ES256');
    expect(verified.address).toBe(await calculateJwkThumbprint(esKeys.jwk, 'sha256'));
    expect(verified.payload).toEqual(payload);
  });

  it('verifies again with a cached key, and still refuses a bad signature for that key', async () => {
    const verifier = new SignatureVerifier();
    const first = await joseSign('EdDSA', edKeys.jwk, edKeys.privateKey, { iat: 1, n: 1 });
    const second = await joseSign('EdDSA', edKeys.jwk, edKeys.privateKey, { iat: 2, n: 2 });
    expect(verifier.verify(first).payload).toEqual({ iat: 1, n: 1 });
    expect(verifier.verify(second).payload).toEqual({ iat: 2, n: 2 });
    const [h, , s] = second.split('.');
    expectBadSignature(() => verifier.verify(`${h}.${json64({ iat: 2, n: 3 })}.${s}`));
  });

  it('refuses a tampered payload', async () => {
    const jws = await joseSign('EdDSA', edKeys.jwk, edKeys.privateKey);
    const [h, , s] = jws.split('.');
    const error = expectBadSignature(() =>
      new SignatureVerifier().verify(`${h}.${json64({ ...payload, to: 'mallory' })}.${s}`),
    );
    expect(error.message).toMatch(/does not verify/);
  });

  it.each(['EdDSA', 'ES256'] as const)('refuses a tampered %s signature', async (alg) => {
    const keys = alg === 'EdDSA' ? edKeys : esKeys;
    const jws = await joseSign(alg, keys.jwk, keys.privateKey);
    const [h, p, s] = jws.split('.') as [string, string, string];
    const bytes = Buffer.from(s, 'base64url');
    bytes[10] = (bytes[10] ?? 0) ^ 0x01;
    const error = expectBadSignature(() => new SignatureVerifier().verify(`${h}.${p}.${b64url(bytes)}`));
    expect(error.message).toMatch(/does not verify/);
  });

  it('refuses a signature by one key with another key in the header', async () => {
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const otherJwk = await exportJWK(other.publicKey);
    const jws = await joseSign('EdDSA', otherJwk, edKeys.privateKey);
    expectBadSignature(() => new SignatureVerifier().verify(jws));
  });

  it('refuses ES256 with an Ed25519 key in the header', () => {
    const signer = ed25519();
    const jws = rawJws({ alg: 'ES256', jwk: signer.jwk }, JSON.stringify(payload), edSign(signer.privateKey));
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/needs a EC P-256 key/);
  });

  it('refuses EdDSA with a P-256 key in the header', () => {
    const signer = p256();
    const jws = rawJws({ alg: 'EdDSA', jwk: signer.jwk }, JSON.stringify(payload), esSign(signer.privateKey));
    expectBadSignature(() => new SignatureVerifier().verify(jws));
  });

  it('refuses alg "none"', () => {
    const signer = ed25519();
    const jws = `${json64({ alg: 'none', jwk: signer.jwk })}.${json64(payload)}.`;
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/"alg"/);
  });

  it('refuses alg "HS256" even when the MAC is right for a key derived from the header', () => {
    const signer = ed25519();
    const jws = rawJws({ alg: 'HS256', jwk: signer.jwk }, JSON.stringify(payload), (input) =>
      createHmac('sha256', JSON.stringify(signer.jwk)).update(input).digest(),
    );
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/"alg"/);
  });

  it('refuses alg "RS256" with a matching RSA key', async () => {
    const rsa = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const jws = await joseSign('RS256', await exportJWK(rsa.publicKey), rsa.privateKey);
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/"alg"/);
  });

  it('refuses a header without alg or without jwk', () => {
    const signer = ed25519();
    expectBadSignature(() =>
      new SignatureVerifier().verify(rawJws({ jwk: signer.jwk }, '{}', edSign(signer.privateKey))),
    );
    const error = expectBadSignature(() =>
      new SignatureVerifier().verify(rawJws({ alg: 'EdDSA' }, '{}', edSign(signer.privateKey))),
    );
    expect(error.message).toMatch(/"jwk"/);
  });

  it('refuses a jwk that holds the private part "d", even with a valid signature', () => {
    const signer = ed25519();
    // An Ed25519 PKCS #8 key ends with its 32-byte seed: the JWK's "d".
    const privateJwk = {
      ...signer.jwk,
      d: signer.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32).toString('base64url'),
    };
    const jws = rawJws({ alg: 'EdDSA', jwk: privateJwk }, JSON.stringify(payload), edSign(signer.privateKey));
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/private part/);
  });

  it('refuses a "crit" header, even with a valid signature', () => {
    const signer = ed25519();
    const jws = rawJws(
      { alg: 'EdDSA', jwk: signer.jwk, crit: ['exp'], exp: 1 },
      JSON.stringify(payload),
      edSign(signer.privateKey),
    );
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/crit/);
  });

  it.each<[string, unknown]>([
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', { protected: 'x', payload: 'y', signature: 'z' }],
    ['a Buffer', Buffer.from('a.b.c')],
  ])('refuses %s instead of a string', (_label, value) => {
    const error = expectBadSignature(() => new SignatureVerifier().verify(value));
    expect(error.message).toMatch(/compact JWS string/);
  });

  it('refuses a string with 2 or 4 parts', async () => {
    const jws = await joseSign('EdDSA', edKeys.jwk, edKeys.privateKey);
    const [h, p, s] = jws.split('.');
    const verifier = new SignatureVerifier();
    expect(verifier.verify(jws).payload).toEqual(payload);
    expect(expectBadSignature(() => verifier.verify(`${h}.${p}`)).message).toMatch(/three base64url parts/);
    expect(expectBadSignature(() => verifier.verify(`${h}.${p}.${s}.${s}`)).message).toMatch(/three base64url parts/);
    expectBadSignature(() => verifier.verify(''));
  });

  it.each([
    ['padding "="', (s: string) => `${s}=`],
    ['standard base64 "+"', (s: string) => `+${s.slice(1)}`],
    ['standard base64 "/"', (s: string) => `/${s.slice(1)}`],
    ['a space', (s: string) => ` ${s}`],
  ])('refuses a part with %s', async (_label, spoil) => {
    const jws = await joseSign('EdDSA', edKeys.jwk, edKeys.privateKey);
    const [h, p, s] = jws.split('.') as [string, string, string];
    const verifier = new SignatureVerifier();
    expectBadSignature(() => verifier.verify(`${spoil(h)}.${p}.${s}`));
    expectBadSignature(() => verifier.verify(`${h}.${spoil(p)}.${s}`));
    expectBadSignature(() => verifier.verify(`${h}.${p}.${spoil(s)}`));
  });

  it('refuses a header that is not JSON', () => {
    const signer = ed25519();
    const signingInput = `${b64url('not json')}.${json64(payload)}`;
    const jws = `${signingInput}.${b64url(sign(null, Buffer.from(signingInput), signer.privateKey))}`;
    expect(expectBadSignature(() => new SignatureVerifier().verify(jws)).message).toMatch(
      /header is not base64url-encoded JSON/,
    );
  });

  it('refuses an ES256 signature in DER rather than the JWS (r || s) form', () => {
    const signer = p256();
    const jws = rawJws({ alg: 'ES256', jwk: signer.jwk }, JSON.stringify(payload), (input) =>
      sign('sha256', input, { key: signer.privateKey, dsaEncoding: 'der' }),
    );
    expectBadSignature(() => new SignatureVerifier().verify(jws));
  });

  it('refuses an EC key that is not on the curve', () => {
    const signer = p256();
    const y = Buffer.from(signer.jwk.y as string, 'base64url');
    y[31] = (y[31] ?? 0) ^ 0x01;
    const jws = rawJws(
      { alg: 'ES256', jwk: { ...signer.jwk, y: b64url(y) } },
      JSON.stringify(payload),
      esSign(signer.privateKey),
    );
    expectBadSignature(() => new SignatureVerifier().verify(jws));
  });

  it.each<[string, string]>([
    ['a JSON array', JSON.stringify([1, 2, 3])],
    ['JSON null', 'null'],
    ['a JSON string', '"hello"'],
    ['a JSON number', '42'],
    ['not JSON', 'hello'],
  ])('refuses a validly signed payload that is %s', (_label, body) => {
    const signer = ed25519();
    const jws = rawJws({ alg: 'EdDSA', jwk: signer.jwk }, body, edSign(signer.privateKey));
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/payload/);
  });

  it('refuses a small-order Ed25519 key whose forged signature node:crypto would accept', () => {
    // x = 01 00..00 is the identity: with R = identity and S = 0, [S]B = R + [k]A holds for any message.
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])) };
    const forged = rawJws({ alg: 'EdDSA', jwk }, JSON.stringify(payload), () =>
      Buffer.concat([Buffer.from([1]), Buffer.alloc(63)]),
    );
    const error = expectBadSignature(() => new SignatureVerifier().verify(forged));
    expect(error.message).toMatch(/small order/);
  });

  it('refuses a non-canonical Ed25519 key encoding (y >= p)', () => {
    // p + 1 spells the identity again, with the high bytes of 2^255 - 18.
    const y = Buffer.alloc(32, 0xff);
    y[0] = 0xee;
    y[31] = 0x7f;
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(y) };
    const forged = rawJws({ alg: 'EdDSA', jwk }, JSON.stringify(payload), () =>
      Buffer.concat([Buffer.from([1]), Buffer.alloc(63)]),
    );
    expect(expectBadSignature(() => new SignatureVerifier().verify(forged)).message).toMatch(/canonical/);
  });

  it('refuses an Ed25519 signature whose S is not below the group order (S + L)', () => {
    const signer = ed25519();
    const jws = rawJws({ alg: 'EdDSA', jwk: signer.jwk }, JSON.stringify(payload), edSign(signer.privateKey));
    const [h, p, s] = jws.split('.') as [string, string, string];
    const signature = Buffer.from(s, 'base64url');
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let S = signature.subarray(32).reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n) + L;
    for (let i = 32; i < 64; i++, S >>= 8n) signature[i] = Number(S & 0xffn);
    const verifier = new SignatureVerifier();
    expect(verifier.verify(jws).payload).toEqual(payload);
    expectBadSignature(() => verifier.verify(`${h}.${p}.${b64url(signature)}`));
  });

  it('refuses an Ed25519 key that is no point on the curve', () => {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(Buffer.concat([Buffer.from([2]), Buffer.alloc(31)])) };
    const forged = rawJws({ alg: 'EdDSA', jwk }, JSON.stringify(payload), () =>
      Buffer.concat([Buffer.from([1]), Buffer.alloc(63)]),
    );
    expectBadSignature(() => new SignatureVerifier().verify(forged));
  });

  it('refuses a second spelling of the same key (base64url with stray trailing bits)', () => {
    const signer = ed25519();
    const x = signer.jwk.x as string;
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(x.slice(-1));
    const alias = `${x.slice(0, -1)}${'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last ^ 1]}`;
    expect(Buffer.from(alias, 'base64url').equals(Buffer.from(x, 'base64url'))).toBe(true);
    const jws = rawJws(
      { alg: 'EdDSA', jwk: { ...signer.jwk, x: alias } },
      JSON.stringify(payload),
      edSign(signer.privateKey),
    );
    expect(expectBadSignature(() => new SignatureVerifier().verify(jws)).message).toMatch(/43 characters/);
  });

  it("says what is wrong with an EC key in its own words, not the parser's", () => {
    const signer = p256();
    const y = Buffer.from(signer.jwk.y as string, 'base64url');
    y[31] = (y[31] ?? 0) ^ 0x01;
    const offCurve = rawJws(
      { alg: 'ES256', jwk: { ...signer.jwk, y: b64url(y) } },
      JSON.stringify(payload),
      esSign(signer.privateKey),
    );
    const error = expectBadSignature(() => new SignatureVerifier().verify(offCurve));
    expect(error.message).toBe('The "jwk" is not a point on P-256.');
    const short = rawJws(
      { alg: 'ES256', jwk: { ...signer.jwk, x: 'AAAA' } },
      JSON.stringify(payload),
      esSign(signer.privateKey),
    );
    expect(expectBadSignature(() => new SignatureVerifier().verify(short)).message).toBe(
      'The "jwk" member "x" must be 32 bytes in unpadded base64url (43 characters).',
    );
  });

  it('refuses a protected header over 1024 characters with a clear error', () => {
    const signer = ed25519();
    const jws = rawJws(
      { alg: 'EdDSA', jwk: signer.jwk, pad: 'x'.repeat(1000) },
      JSON.stringify(payload),
      edSign(signer.privateKey),
    );
    const error = expectBadSignature(() => new SignatureVerifier().verify(jws));
    expect(error.message).toMatch(/protected header is \d+ characters; at most 1024 are accepted/);
  });

  it('caches a signer only once its signature has verified', () => {
    const verifier = new SignatureVerifier();
    const signer = ed25519();
    const good = rawJws({ alg: 'EdDSA', jwk: signer.jwk }, JSON.stringify(payload), edSign(signer.privateKey));
    const [h, p] = good.split('.') as [string, string, string];
    for (let i = 0; i < 50; i++) {
      const other = ed25519();
      const header = json64({ alg: 'EdDSA', jwk: other.jwk, n: i });
      expectBadSignature(() => verifier.verify(`${header}.${p}.${b64url(Buffer.alloc(64, 1))}`));
    }
    expectBadSignature(() => verifier.verify(`${h}.${p}.${b64url(Buffer.alloc(64, 1))}`));
    expect(verifier.cacheUsage().entries).toBe(0);
    verifier.verify(good);
    verifier.verify(good);
    expect(verifier.cacheUsage().entries).toBe(1);
    expect(verifier.cacheUsage().bytes).toBeGreaterThan(h.length);
  });

  it('refuses a JSON-array payload signed with jose', async () => {
    const jws = await joseSign('ES256', esKeys.jwk, esKeys.privateKey, ['iat', 1]);
    expect(expectBadSignature(() => new SignatureVerifier().verify(jws)).message).toMatch(/must be a JSON object/);
  });
});

describe('SignatureVerifier.checkFreshness', () => {
  const nowMs = 1_700_000_000_000;
  const nowS = nowMs / 1000;
  const verifier = new SignatureVerifier(() => nowMs);

  it.each([0, 1, -1, 60, -300, 59.5, -299.5])('accepts an iat %d s from the clock', (offset) => {
    expect(() => verifier.checkFreshness({ iat: nowS + offset })).not.toThrow();
  });

  it.each([61, 290, 301, -301, 86_400, -nowS])('refuses an iat %d s from the clock as stale_signature', (offset) => {
    const error = appErrorOf(() => verifier.checkFreshness({ iat: nowS + offset }));
    expect(error.code).toBe('stale_signature');
    expect(error.status).toBe(401);
  });

  it('says whether the iat is too old or ahead of the clock', () => {
    expect(appErrorOf(() => verifier.checkFreshness({ iat: nowS - 400 })).message).toMatch(/400 s old; at most 300 s/);
    expect(appErrorOf(() => verifier.checkFreshness({ iat: nowS + 90 })).message).toMatch(
      /90 s ahead of the server's clock; at most 60 s/,
    );
  });

  it('takes the future window from its options, leaving the past window as it is', () => {
    const lenient = new SignatureVerifier(() => nowMs, { maxFutureSeconds: 120 });
    expect(() => lenient.checkFreshness({ iat: nowS + 120 })).not.toThrow();
    expect(appErrorOf(() => lenient.checkFreshness({ iat: nowS + 121 })).code).toBe('stale_signature');
    expect(() => lenient.checkFreshness({ iat: nowS - 300 })).not.toThrow();
    expect(appErrorOf(() => lenient.checkFreshness({ iat: nowS - 301 })).code).toBe('stale_signature');
  });

  it('uses the injected clock rather than the real one', () => {
    const realNow = Math.floor(Date.now() / 1000);
    expect(appErrorOf(() => verifier.checkFreshness({ iat: realNow })).code).toBe('stale_signature');
    expect(() => new SignatureVerifier().checkFreshness({ iat: realNow })).not.toThrow();
  });

  it.each<[string, unknown]>([
    ['missing', undefined],
    ['a string', String(nowS)],
    ['null', null],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['an array', [nowS]],
  ])('refuses an iat that is %s as bad_signature', (_label, iat) => {
    const error = appErrorOf(() => verifier.checkFreshness(iat === undefined ? {} : { iat }));
    expect(error.code).toBe('bad_signature');
    expect(error.status).toBe(401);
  });
});

describe('SignatureVerifier and node:crypto agree on Ed25519', () => {
  // EdDSA is checked by libsodium for speed; any difference from OpenSSL's answer on a signature
  // a client could send would refuse good messages or let bad ones through.
  const keys = Array.from({ length: 4 }, () => generateKeyPairSync('ed25519'));

  it('accepts what node:crypto accepts and refuses every one-bit change of input or signature', () => {
    const verifier = new SignatureVerifier();
    fc.assert(
      fc.property(
        fc.nat({ max: keys.length - 1 }),
        fc.string({ maxLength: 200 }),
        fc.nat(),
        fc.boolean(),
        (k, text, bit, inSignature) => {
          const { publicKey, privateKey } = keys[k] as { publicKey: KeyObject; privateKey: KeyObject };
          const header = json64({ alg: 'EdDSA', jwk: publicJwk(publicKey, 'Ed25519') });
          const input = `${header}.${b64url(JSON.stringify({ text }))}`;
          const signature = sign(null, Buffer.from(input, 'ascii'), privateKey);
          expect(verifier.verify(`${input}.${b64url(signature)}`).payload).toEqual({ text });

          const changedSignature = Buffer.from(signature);
          const changedInput = Buffer.from(input, 'ascii');
          const target = inSignature ? changedSignature : changedInput;
          const index = bit % (target.length * 8);
          target[index >> 3] = (target[index >> 3] as number) ^ (1 << (index & 7));
          const nodeSays = verify(null, changedInput, publicKey, changedSignature);
          const compact = `${changedInput.toString('latin1')}.${b64url(changedSignature)}`;
          let relaySays: boolean;
          try {
            verifier.verify(compact);
            relaySays = true;
          } catch {
            relaySays = false;
          }
          expect(nodeSays).toBe(false);
          expect(relaySays).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
