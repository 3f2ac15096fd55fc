import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomUUID,
  sign,
  verify,
  constants,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  PeerIdentity,
  openMessage,
  sealMessage,
  verifyMessageSignature,
  type RelayedMessage,
} from '../../../src/client/index.js';
import { SignatureVerifier } from '../../../src/crypto/signatures.js';

// docs/guides/ios.md tells iOS developers how to build every byte the relay and the reference
// client exchange. These tests follow the guide's recipes step by step with bare node:crypto (no
// JOSE library), and check that the reference client accepts what they build and that they can
// read what the client builds; and that the guide's test vectors are right.

const guide = readFileSync(fileURLToPath(new URL('../../../docs/guides/ios.md', import.meta.url)), 'utf8');
const b64u = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');
const u32 = (value: number): Buffer => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
};

/** The guide's Concat KDF (RFC 7518 4.6.2): one SHA-256 round over counter || Z || OtherInfo. */
function concatKdf(z: Buffer, algorithm: string, keyBits = 256): Buffer {
  const alg = Buffer.from(algorithm, 'ascii');
  const otherInfo = Buffer.concat([u32(alg.length), alg, u32(0), u32(0), u32(keyBits)]);
  return createHash('sha256')
    .update(Buffer.concat([u32(1), z, otherInfo]))
    .digest();
}

const aesKeyWrap = (kek: Buffer, key: Buffer): Buffer => {
  const cipher = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  return Buffer.concat([cipher.update(key), cipher.final()]);
};

const aesKeyUnwrap = (kek: Buffer, wrapped: Buffer): Buffer => {
  const decipher = createDecipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  return Buffer.concat([decipher.update(wrapped), decipher.final()]);
};

/** The guide's JWE assembly: AES-256-GCM, 12-byte IV, AAD = ASCII of the encoded header, 16-byte tag. */
function assembleJwe(header: object, cek: Buffer, encryptedKey: Buffer, plaintext: Buffer): string {
  const encodedHeader = b64u(JSON.stringify(header));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', cek, iv);
  cipher.setAAD(Buffer.from(encodedHeader, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [encodedHeader, b64u(encryptedKey), b64u(iv), b64u(ciphertext), b64u(cipher.getAuthTag())].join('.');
}

function openGcm(parts: string[], cek: Buffer): Buffer {
  const [encodedHeader, , iv, ciphertext, tag] = parts as [string, string, string, string, string];
  const decipher = createDecipheriv('aes-256-gcm', cek, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(encodedHeader, 'ascii'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
}

/** What the guide's Secure Enclave code does: x and y from the 65-byte X9.63 point, a raw r||s ES256 JWS. */
function es256Signer(privateKey: KeyObject) {
  const point = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-65);
  expect(point[0]).toBe(0x04);
  const x = b64u(point.subarray(1, 33));
  const y = b64u(point.subarray(33, 65));
  const canonical = `{"crv":"P-256","kty":"EC","x":"${x}","y":"${y}"}`;
  const address = createHash('sha256').update(canonical, 'utf8').digest('base64url');
  const jws = (payload: object): string => {
    const header = `{"alg":"ES256","jwk":{"crv":"P-256","kty":"EC","x":"${x}","y":"${y}"}}`;
    const signingInput = `${b64u(header)}.${b64u(JSON.stringify(payload))}`;
    const signature = sign('sha256', Buffer.from(signingInput, 'ascii'), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    expect(signature).toHaveLength(64);
    return `${signingInput}.${b64u(signature)}`;
  };
  return { x, y, address, jws };
}

describe('the test vectors in docs/guides/ios.md', () => {
  it('P-256 thumbprint of the RFC 6979 A.2.5 key', () => {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721', 'hex'));
    const point = ecdh.getPublicKey();
    const x = b64u(point.subarray(1, 33));
    const y = b64u(point.subarray(33));
    const canonical = `{"crv":"P-256","kty":"EC","x":"${x}","y":"${y}"}`;
    const address = createHash('sha256').update(canonical).digest('base64url');
    expect(address).toBe('DOvxvJiAdIqVWIkFt5hDtCunXLF0BV4-JGv4f-ALSm0');
    for (const value of [point.toString('hex'), canonical, address]) expect(guide).toContain(value);
  });

  it('X25519 (RFC 7748 6.1), Concat KDF for ECDH-ES+A256KW, and AES key wrap (RFC 3394 4.6)', () => {
    const pkcs8 = (raw: string) =>
      createPrivateKey({
        key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.from(raw, 'hex')]),
        format: 'der',
        type: 'pkcs8',
      });
    const ephemeral = pkcs8('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const recipient = pkcs8('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const z = diffieHellman({ privateKey: ephemeral, publicKey: createPublicKey(recipient) });
    expect(z.toString('hex')).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    const alg = Buffer.from('ECDH-ES+A256KW', 'ascii');
    const otherInfo = Buffer.concat([u32(alg.length), alg, u32(0), u32(0), u32(256)]).toString('hex');
    expect(otherInfo).toBe('0000000e454344482d45532b413235364b57000000000000000000000100');
    const kek = concatKdf(z, 'ECDH-ES+A256KW').toString('hex');
    expect(kek).toBe('d1e6b2019fbfba04389ae1780381761c7e7219e2c21470d5ce47f661e7cbdb76');
    const wrapped = aesKeyWrap(
      Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'),
      Buffer.from('00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f', 'hex'),
    ).toString('hex');
    expect(wrapped).toBe('28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21');
    for (const value of [z.toString('hex'), otherInfo, kek, wrapped]) expect(guide).toContain(value);
  });
});

describe("the guide's recipes interoperate with the reference client", () => {
  let node: PeerIdentity; // a Node peer with the client's default keys (Ed25519, RSA-OAEP-256)
  let nodeX25519: PeerIdentity;
  const ios = es256Signer(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const iosAgreement = generateKeyPairSync('x25519');
  const iosAgreementX = iosAgreement.publicKey.export({ format: 'jwk' }).x as string;

  beforeAll(async () => {
    [node, nodeX25519] = await Promise.all([
      PeerIdentity.generate(),
      PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW' }),
    ]);
  });

  /** A message from the iOS peer, signed the guide's way over the guide's claims. */
  function iosMessage(to: PeerIdentity, encryptedContent: string): RelayedMessage {
    const messageId = randomUUID();
    const signature = ios.jws({
      message_id: messageId,
      from: ios.address,
      to: to.address,
      type: 'text',
      sha256: createHash('sha256').update(encryptedContent, 'utf8').digest('base64url'),
      iat: Math.floor(Date.now() / 1000),
    });
    return {
      message_id: messageId,
      from_address: ios.address,
      to_address: to.address,
      message_type: 'text',
      encrypted_content: encryptedContent,
      signature,
      accepted_at: new Date().toISOString(),
    };
  }

  it('an ES256 registration built by hand passes the relay verifier', () => {
    const jws = ios.jws({
      address: ios.address,
      encryption_key: { kty: 'OKP', crv: 'X25519', x: iosAgreementX },
      connection_info: { platform: 'ios' },
      iat: Math.floor(Date.now() / 1000),
    });
    const verified = new SignatureVerifier().verify(jws);
    expect(verified.address).toBe(ios.address);
  });

  it('RSA-OAEP-256 + A256GCM built by hand (the path to a Node peer) opens in the reference client', async () => {
    const rsa = createPublicKey({
      key: { kty: 'RSA', n: node.encryptionKey.n as string, e: node.encryptionKey.e as string },
      format: 'jwk',
    });
    const cek = randomBytes(32);
    // SecKeyCreateEncryptedData(.rsaEncryptionOAEPSHA256): OAEP with SHA-256 and MGF1-SHA-256, no label.
    const encryptedKey = publicEncrypt(
      { key: rsa, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      cek,
    );
    expect(encryptedKey).toHaveLength(256);
    const jwe = assembleJwe({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }, cek, encryptedKey, Buffer.from('from the phone'));
    const opened = await openMessage(node, iosMessage(node, jwe));
    expect(opened.text).toBe('from the phone');
    expect(opened.sender_alg).toBe('ES256');
  });

  it('ECDH-ES+A256KW over X25519 built by hand opens in the reference client', async () => {
    const ephemeral = generateKeyPairSync('x25519');
    const recipient = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: nodeX25519.encryptionKey.x as string },
      format: 'jwk',
    });
    const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
    const cek = randomBytes(32);
    const encryptedKey = aesKeyWrap(concatKdf(z, 'ECDH-ES+A256KW'), cek);
    expect(encryptedKey).toHaveLength(40);
    const header = {
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      epk: { crv: 'X25519', kty: 'OKP', x: ephemeral.publicKey.export({ format: 'jwk' }).x },
    };
    const jwe = assembleJwe(header, cek, encryptedKey, Buffer.from('via X25519'));
    expect((await openMessage(nodeX25519, iosMessage(nodeX25519, jwe))).text).toBe('via X25519');
  });

  it("the client's messages to an iOS X25519 key verify and decrypt by the guide's steps", async () => {
    const iosRecipient = { address: ios.address, encryption_key: { kty: 'OKP', crv: 'X25519', x: iosAgreementX } };
    for (const sender of [node, await PeerIdentity.generate({ signing: 'ES256' })]) {
      const sealed = await sealMessage(sender, iosRecipient, 'to the phone');

      // Signature: the header's jwk verifies the signing input; its thumbprint is from_address.
      const [h, p, s] = sealed.signature.split('.') as [string, string, string];
      const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as {
        alg: string;
        jwk: Record<string, string>;
      };
      const jwk = header.jwk;
      const canonical =
        header.alg === 'EdDSA'
          ? `{"crv":"Ed25519","kty":"OKP","x":"${jwk['x']}"}`
          : `{"crv":"P-256","kty":"EC","x":"${jwk['x']}","y":"${jwk['y']}"}`;
      expect(createHash('sha256').update(canonical).digest('base64url')).toBe(sealed.from_address);
      const key = createPublicKey({ key: jwk, format: 'jwk' });
      const input = Buffer.from(`${h}.${p}`, 'ascii');
      const signature = Buffer.from(s, 'base64url');
      expect(
        header.alg === 'EdDSA'
          ? verify(null, input, key, signature)
          : verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature),
      ).toBe(true);
      await expect(verifyMessageSignature(sealed)).resolves.toMatchObject({ address: sealed.from_address });

      // Decryption: epk -> Z -> Concat KDF -> AES key unwrap -> AES-GCM with the encoded header as AAD.
      const parts = sealed.encrypted_content.split('.');
      const jweHeader = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8')) as {
        alg: string;
        enc: string;
        epk: { x: string };
      };
      expect(jweHeader).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk: { kty: 'OKP', crv: 'X25519' } });
      const z = diffieHellman({
        privateKey: iosAgreement.privateKey,
        publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: jweHeader.epk.x }, format: 'jwk' }),
      });
      const cek = aesKeyUnwrap(concatKdf(z, 'ECDH-ES+A256KW'), Buffer.from(parts[1] as string, 'base64url'));
      expect(openGcm(parts, cek).toString('utf8')).toBe('to the phone');
    }
  });

  it('an RSA-OAEP-256 JWE from the client unwraps with OAEP-SHA-256 (the iOS RSA receiving path)', async () => {
    const iosRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = iosRsa.publicKey.export({ format: 'jwk' });
    const sealed = await sealMessage(
      node,
      { address: ios.address, encryption_key: { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RSA-OAEP-256' } },
      'rsa to phone',
    );
    const parts = sealed.encrypted_content.split('.');
    const cek = privateDecrypt(
      { key: iosRsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(parts[1] as string, 'base64url'),
    );
    expect(openGcm(parts, cek).toString('utf8')).toBe('rsa to phone');
  });
});
