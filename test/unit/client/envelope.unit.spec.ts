import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  CompactEncrypt,
  CompactSign,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';
import {
  EnvelopeError,
  PeerIdentity,
  contentSha256,
  encryptFor,
  isCompactJwe,
  openMessage,
  resignMessage,
  sealMessage,
  signRegistration,
  verifyMessageSignature,
  verifyRegistration,
  type KeyWrapAlgorithm,
  type OutgoingMessage,
  type RelayedMessage,
  type SigningAlgorithm,
} from '../../../src/client/index.js';
import { SignatureVerifier } from '../../../src/crypto/signatures.js';
import { checkEncryptionKey } from '../../../src/ingress/peer-directory.js';

const PLAINTEXT = 'meet at the usual place at 9, bring the keys';

const relayed = (message: OutgoingMessage, changes: Partial<RelayedMessage> = {}): RelayedMessage => ({
  ...message,
  accepted_at: new Date().toISOString(),
  ...changes,
});

async function expectRefusal(promise: Promise<unknown>, code: string): Promise<EnvelopeError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(EnvelopeError);
  expect((thrown as EnvelopeError).code).toBe(code);
  return thrown as EnvelopeError;
}

/** Replaces one dot-separated part of a compact serialization with `replacement(part)`. */
const withPart = (compact: string, index: number, replacement: (part: string) => string): string =>
  compact
    .split('.')
    .map((part, i) => (i === index ? replacement(part) : part))
    .join('.');

/** Flips one bit in the middle of a base64url part's bytes. */
const flipBit = (part: string): string => {
  const bytes = Buffer.from(part, 'base64url');
  const index = Math.floor(bytes.length / 2);
  bytes[index] = (bytes[index] ?? 0) ^ 0x01;
  return bytes.toString('base64url');
};

const combinations: [SigningAlgorithm, KeyWrapAlgorithm][] = [
  ['EdDSA', 'RSA-OAEP-256'],
  ['EdDSA', 'ECDH-ES+A256KW'],
  ['ES256', 'RSA-OAEP-256'],
  ['ES256', 'ECDH-ES+A256KW'],
];

describe('PeerIdentity', () => {
  it('defaults to Ed25519 signing and 2048-bit RSA-OAEP-256 encryption', async () => {
    const identity = await PeerIdentity.generate();
    expect(identity.signingAlgorithm).toBe('EdDSA');
    expect(identity.signingKey).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.any(String) });
    expect(identity.encryptionAlgorithm).toBe('RSA-OAEP-256');
    expect(identity.encryptionKey).toMatchObject({ kty: 'RSA', e: 'AQAB', alg: 'RSA-OAEP-256' });
    expect(Buffer.from(identity.encryptionKey.n as string, 'base64url').length * 8).toBe(2048);
    expect(identity.encryptionKey).not.toHaveProperty('d');
  });

  it.each(['EdDSA', 'ES256'] as const)(
    'derives the address as the RFC 7638 thumbprint of the %s signing key',
    async (signing) => {
      const identity = await PeerIdentity.generate({ signing, encryption: 'ECDH-ES+A256KW' });
      expect(identity.address).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(identity.address).toBe(await calculateJwkThumbprint(identity.signingKey as JWK, 'sha256'));
      const members = signing === 'EdDSA' ? ['crv', 'kty', 'x'] : ['crv', 'kty', 'x', 'y'];
      expect(Object.keys(identity.signingKey).sort()).toEqual(members);
    },
  );

  it.each(combinations)(
    'exports and re-imports a %s / %s identity as JWKs that still decrypt and sign',
    async (signing, encryption) => {
      const original = await PeerIdentity.generate({ signing, encryption });
      const exported = await original.toJwk();
      expect(exported.signing).toMatchObject({ alg: signing, d: expect.any(String) });
      expect(exported.encryption).toMatchObject({ alg: encryption, d: expect.any(String) });
      // Persisting means JSON: the round trip goes through it.
      const restored = await PeerIdentity.fromJwk(JSON.parse(JSON.stringify(exported)) as typeof exported);
      expect(restored.address).toBe(original.address);
      expect(restored.encryptionKey).toEqual(original.encryptionKey);

      const sender = await PeerIdentity.generate();
      const sealed = await sealMessage(
        sender,
        { address: original.address, encryption_key: original.encryptionKey },
        PLAINTEXT,
      );
      expect((await openMessage(restored, relayed(sealed))).text).toBe(PLAINTEXT);
      const fromRestored = await sealMessage(
        restored,
        { address: sender.address, encryption_key: sender.encryptionKey },
        'back',
      );
      expect((await verifyMessageSignature(fromRestored)).address).toBe(original.address);
    },
  );

  it('restores a JWK without "alg" from its key type', async () => {
    const exported = await (await PeerIdentity.generate({ signing: 'ES256', encryption: 'ECDH-ES+A256KW' })).toJwk();
    const { alg: _signingAlg, ...signing } = exported.signing;
    const { alg: _encryptionAlg, ...encryption } = exported.encryption;
    const restored = await PeerIdentity.fromJwk({ signing, encryption });
    expect(restored.signingAlgorithm).toBe('ES256');
    expect(restored.encryptionAlgorithm).toBe('ECDH-ES+A256KW');
  });

  it('refuses public keys, mismatched algs and foreign key types on import', async () => {
    const identity = await PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW' });
    const exported = await identity.toJwk();
    await expectRefusal(
      PeerIdentity.fromJwk({ signing: identity.signingKey, encryption: exported.encryption }),
      'invalid_key',
    );
    await expectRefusal(
      PeerIdentity.fromJwk({ signing: { ...exported.signing, alg: 'ES256' }, encryption: exported.encryption }),
      'invalid_key',
    );
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' }) as JWK;
    await expectRefusal(PeerIdentity.fromJwk({ signing: p384, encryption: exported.encryption }), 'invalid_key');
  });

  it('will not export keys made non-extractable', async () => {
    const identity = await PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW', extractable: false });
    await expectRefusal(identity.toJwk(), 'invalid_key');
  });

  it('refuses RSA keys under 2048 bits', async () => {
    await expectRefusal(PeerIdentity.generate({ rsaModulusLength: 1024 }), 'invalid_key');
  });
});

describe.each(combinations)('a message signed with %s and encrypted with %s', (signing, encryption) => {
  let alice: PeerIdentity;
  let bob: PeerIdentity;
  let mallory: PeerIdentity;
  let sealed: OutgoingMessage;

  beforeAll(async () => {
    [alice, bob, mallory] = await Promise.all([
      PeerIdentity.generate({ signing, encryption: 'ECDH-ES+A256KW' }),
      PeerIdentity.generate({ signing: 'EdDSA', encryption }),
      PeerIdentity.generate({ signing, encryption }),
    ]);
    sealed = await sealMessage(alice, { address: bob.address, encryption_key: bob.encryptionKey }, PLAINTEXT, {
      type: 'chat.text',
    });
  });

  it('is a compact JWE with A256GCM and the key wrapping that fits the recipient key, not holding the plaintext', () => {
    expect(isCompactJwe(sealed.encrypted_content)).toBe(true);
    const parts = sealed.encrypted_content.split('.');
    expect(parts).toHaveLength(5);
    const header = decodeProtectedHeader(sealed.encrypted_content);
    expect(header).toMatchObject({ alg: encryption, enc: 'A256GCM' });
    if (encryption === 'ECDH-ES+A256KW') {
      expect(header.epk).toMatchObject({ kty: 'OKP', crv: 'X25519' });
      expect(Buffer.from(parts[1] as string, 'base64url')).toHaveLength(40); // a 32-byte key wrapped with RFC 3394
    } else {
      expect(Buffer.from(parts[1] as string, 'base64url')).toHaveLength(256); // RSA-2048 output
    }
    expect(Buffer.from(parts[2] as string, 'base64url')).toHaveLength(12);
    expect(Buffer.from(parts[4] as string, 'base64url')).toHaveLength(16);
    expect(sealed.encrypted_content).not.toContain(PLAINTEXT);
    expect(Buffer.from(parts[3] as string, 'base64url').toString('utf8')).not.toContain(PLAINTEXT);
  });

  it('carries a JWS whose header holds the sender jwk and whose payload binds id, addresses, type and ciphertext hash', () => {
    const [headerPart, payloadPart, signaturePart] = sealed.signature.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(header).toEqual({ alg: signing, jwk: alice.signingKey });
    const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(payload).toEqual({
      message_id: sealed.message_id,
      from: alice.address,
      to: bob.address,
      type: 'chat.text',
      sha256: createHash('sha256').update(sealed.encrypted_content, 'utf8').digest('base64url'),
      iat: expect.any(Number),
    });
    expect(Math.abs((payload['iat'] as number) - Date.now() / 1000)).toBeLessThan(5);
    // Both EdDSA and ES256 (raw r||s, not DER) signatures are 64 bytes.
    expect(Buffer.from(signaturePart, 'base64url')).toHaveLength(64);
    expect(sealed.message_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("passes the relay's own signature check", () => {
    const verified = new SignatureVerifier().verify(sealed.signature);
    expect(verified.address).toBe(alice.address);
    expect(verified.payload['sha256']).toBe(contentSha256(sealed.encrypted_content));
  });

  it('opens for the recipient: signature verified end to end, then decrypted', async () => {
    const opened = await openMessage(bob, relayed(sealed));
    expect(opened.text).toBe(PLAINTEXT);
    expect(Buffer.from(opened.plaintext).toString('utf8')).toBe(PLAINTEXT);
    expect(opened.sender_key).toEqual(alice.signingKey);
    expect(opened.sender_alg).toBe(signing);
    expect(opened.from_address).toBe(alice.address);
  });

  it('round-trips binary content and the empty message', async () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
    const binary = await sealMessage(alice, { address: bob.address, encryption_key: bob.encryptionKey }, bytes, {
      type: 'file',
    });
    expect(Buffer.from((await openMessage(bob, relayed(binary))).plaintext)).toEqual(Buffer.from(bytes));
    const empty = await sealMessage(alice, { address: bob.address, encryption_key: bob.encryptionKey }, '');
    expect(isCompactJwe(empty.encrypted_content)).toBe(true);
    expect((await openMessage(bob, relayed(empty))).text).toBe('');
  });

  it('refuses changed ciphertext: the signed hash no longer matches', async () => {
    const tampered = withPart(sealed.encrypted_content, 3, flipBit);
    await expectRefusal(openMessage(bob, relayed(sealed, { encrypted_content: tampered })), 'content_hash_mismatch');
  });

  it('refuses ciphertext changed and re-signed by the sender: the GCM tag fails', async () => {
    for (const part of [2, 3, 4]) {
      const tampered = { ...sealed, encrypted_content: withPart(sealed.encrypted_content, part, flipBit) };
      const resigned = await resignMessage(alice, tampered);
      await expectRefusal(openMessage(bob, relayed(resigned)), 'decryption_failed');
    }
    // The protected header is the GCM additional data: changing it breaks the tag too.
    const header = JSON.parse(
      Buffer.from(sealed.encrypted_content.split('.')[0] as string, 'base64url').toString('utf8'),
    ) as Record<string, unknown>;
    const headerChanged = withPart(sealed.encrypted_content, 0, () =>
      Buffer.from(JSON.stringify({ ...header, kid: 'x' })).toString('base64url'),
    );
    await expectRefusal(
      openMessage(bob, relayed(await resignMessage(alice, { ...sealed, encrypted_content: headerChanged }))),
      'decryption_failed',
    );
  });

  it('refuses a changed type, recipient or id: the signed claims differ', async () => {
    await expectRefusal(openMessage(bob, relayed(sealed, { message_type: 'text' })), 'claims_mismatch');
    await expectRefusal(openMessage(bob, relayed(sealed, { to_address: mallory.address })), 'claims_mismatch');
    await expectRefusal(openMessage(bob, relayed(sealed, { message_id: randomUUID() })), 'claims_mismatch');
    // The relay lower-cases ids; that is the same id.
    expect((await openMessage(bob, relayed(sealed, { message_id: sealed.message_id.toUpperCase() }))).text).toBe(
      PLAINTEXT,
    );
  });

  it('refuses a message claiming another sender', async () => {
    await expectRefusal(openMessage(bob, relayed(sealed, { from_address: mallory.address })), 'sender_mismatch');
    // Mallory signs a message from "alice" with her own key: the key is not alice's.
    const forged = await sealMessage(
      mallory,
      { address: bob.address, encryption_key: bob.encryptionKey },
      'send money',
    );
    const claims = JSON.parse(
      Buffer.from(forged.signature.split('.')[1] as string, 'base64url').toString('utf8'),
    ) as Record<string, unknown>;
    const signature = await mallory.sign({ ...claims, from: alice.address });
    await expectRefusal(
      openMessage(bob, relayed({ ...forged, from_address: alice.address, signature })),
      'sender_mismatch',
    );
  });

  it("refuses a signature made with another key under alice's jwk", async () => {
    const [, payload] = sealed.signature.split('.') as [string, string];
    const malloryKey = await generateKeyPair(signing, signing === 'EdDSA' ? { crv: 'Ed25519' } : {});
    const forged = await new CompactSign(Buffer.from(payload, 'base64url'))
      .setProtectedHeader({ alg: signing, jwk: { ...alice.signingKey } })
      .sign(malloryKey.privateKey);
    await expectRefusal(openMessage(bob, relayed(sealed, { signature: forged })), 'bad_signature');
    await expectRefusal(
      openMessage(bob, relayed(sealed, { signature: withPart(sealed.signature, 2, flipBit) })),
      'bad_signature',
    );
  });

  it('refuses malformed signatures: alg none, a private jwk, a jwk that does not fit alg, crit, not three parts', async () => {
    const [, payload, sig] = sealed.signature.split('.') as [string, string, string];
    const header = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const cases = [
      `${header({ alg: 'none', jwk: alice.signingKey })}.${payload}.`,
      `${header({ alg: signing, jwk: { ...alice.signingKey, d: 'AAAA' } })}.${payload}.${sig}`,
      `${header({ alg: signing === 'EdDSA' ? 'ES256' : 'EdDSA', jwk: alice.signingKey })}.${payload}.${sig}`,
      `${header({ alg: signing, jwk: alice.signingKey, crit: ['exp'], exp: 1 })}.${payload}.${sig}`,
      `${header({ alg: signing })}.${payload}.${sig}`,
      `${payload}.${sig}`,
    ];
    for (const signature of cases)
      await expectRefusal(openMessage(bob, relayed(sealed, { signature })), 'malformed_signature');
  });

  it('refuses a message addressed to someone else, and one it cannot decrypt', async () => {
    const forMallory = await sealMessage(
      alice,
      { address: mallory.address, encryption_key: mallory.encryptionKey },
      PLAINTEXT,
    );
    await expectRefusal(openMessage(bob, relayed(forMallory)), 'wrong_recipient');
    // Signed for bob but encrypted to mallory's key: bob's key does not unwrap it.
    const misencrypted = { ...forMallory, to_address: bob.address };
    await expectRefusal(openMessage(bob, relayed(await resignMessage(alice, misencrypted))), 'decryption_failed');
  });
});

describe('key wrapping policy', () => {
  it('refuses to encrypt to RSA keys under 2048 bits or to keys that are not RSA or X25519', async () => {
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    await expectRefusal(encryptFor({ ...rsa1024, kty: 'RSA' }, 'x'), 'invalid_key');
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    await expectRefusal(encryptFor({ ...p256, kty: 'EC' }, 'x'), 'invalid_key');
    const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    await expectRefusal(encryptFor({ ...rsa2048, kty: 'RSA', alg: 'RSA-OAEP' }, 'x'), 'invalid_key');
  });

  it('decrypts only A256GCM with the key management that fits its key (direct ECDH-ES is also accepted for X25519)', async () => {
    const [rsa, x25519] = await Promise.all([
      PeerIdentity.generate({ encryption: 'RSA-OAEP-256' }),
      PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW' }),
    ]);
    const x25519Key = await importJWK(x25519.encryptionKey as JWK, 'ECDH-ES');
    const plaintext = new TextEncoder().encode('hi');
    const direct = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
      .encrypt(x25519Key);
    expect(direct.split('.')[1]).toBe('');
    expect(isCompactJwe(direct)).toBe(true);
    expect(new TextDecoder().decode(await x25519.decrypt(direct))).toBe('hi');

    const a128kw = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'ECDH-ES+A128KW', enc: 'A256GCM' })
      .encrypt(x25519Key);
    await expectRefusal(x25519.decrypt(a128kw), 'decryption_failed');
    const a128gcm = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A128GCM' })
      .encrypt(x25519Key);
    await expectRefusal(x25519.decrypt(a128gcm), 'decryption_failed');
    const rsaKey = await importJWK(rsa.encryptionKey as JWK, 'RSA-OAEP');
    const sha1Oaep = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A256GCM' })
      .encrypt(rsaKey);
    await expectRefusal(rsa.decrypt(sha1Oaep), 'decryption_failed');
  });

  it('refuses content over the relay limit before sending', async () => {
    const [alice, bob] = await Promise.all([
      PeerIdentity.generate(),
      PeerIdentity.generate({ encryption: 'ECDH-ES+A256KW' }),
    ]);
    await expectRefusal(
      sealMessage(alice, { address: bob.address, encryption_key: bob.encryptionKey }, 'x'.repeat(50_000)),
      'content_too_large',
    );
    const fits = await sealMessage(
      alice,
      { address: bob.address, encryption_key: bob.encryptionKey },
      'x'.repeat(48_000),
    );
    expect(Buffer.byteLength(fits.encrypted_content)).toBeLessThanOrEqual(65_536);
  });
});

describe('registration', () => {
  it.each(combinations)(
    'signs a %s / %s registration the relay accepts and a peer can verify',
    async (signing, encryption) => {
      const identity = await PeerIdentity.generate({ signing, encryption });
      const jws = await signRegistration(identity, { platform: 'node' });
      const verified = new SignatureVerifier().verify(jws);
      expect(verified.address).toBe(identity.address);
      expect(verified.payload).toEqual({
        address: identity.address,
        encryption_key: identity.encryptionKey,
        connection_info: { platform: 'node' },
        iat: expect.any(Number),
      });
      expect(checkEncryptionKey(verified.payload['encryption_key'])).toEqual(identity.encryptionKey);
      const registration = await verifyRegistration(jws);
      expect(registration.encryption_key).toEqual(identity.encryptionKey);
      expect(registration.signing_key).toEqual(identity.signingKey);
    },
  );

  it('refuses a registration whose address is not its key', async () => {
    const [alice, mallory] = await Promise.all([PeerIdentity.generate(), PeerIdentity.generate()]);
    const jws = await mallory.sign({
      address: alice.address,
      encryption_key: mallory.encryptionKey,
      iat: Math.floor(Date.now() / 1000),
    });
    await expectRefusal(verifyRegistration(jws), 'untrusted_peer_key');
  });
});
