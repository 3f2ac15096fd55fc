import { createHash, randomUUID } from 'node:crypto';
import { CompactEncrypt, compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { deriveAddress, jwkThumbprint, type PublicJwk } from '../crypto/address.js';
import type { VerifiedJws } from '../crypto/signatures.js';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { RelayedMessage as RelayedMessageSchema } from '../api/frames.js';
import { EnvelopeError } from './errors.js';
import {
  keyWrapAlgorithmOf,
  publicEncryptionJwk,
  publicSigningJwk,
  signingAlgorithmOf,
  type PeerIdentity,
  type SigningAlgorithm,
} from './identity.js';
import type { MessageClaims, OpenedMessage, OutgoingMessage, Recipient, RelayedMessage } from './types.js';

/** The relay's bound on `encrypted_content`, in bytes of UTF-8. */
export const MAX_ENCRYPTED_CONTENT_BYTES = 65_536;
/** The relay's bound on `message_type`, in characters. */
export const MAX_MESSAGE_TYPE_LENGTH = 50;

const BASE64URL_PART = /^[A-Za-z0-9_-]+$/;

/**
 * Whether a string has the shape of a compact JWE: header.encryptedKey.iv.ciphertext.tag, five
 * base64url parts. The key part is empty for direct ECDH-ES, the ciphertext for an empty message.
 */
export function isCompactJwe(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const parts = value.split('.');
  return (
    parts.length === 5 && parts.every((part, i) => BASE64URL_PART.test(part) || ((i === 1 || i === 3) && part === ''))
  );
}

/** base64url SHA-256 of the UTF-8 bytes of the ciphertext string: the `sha256` a message signature covers. */
export const contentSha256 = (encryptedContent: string): string =>
  createHash('sha256').update(encryptedContent, 'utf8').digest('base64url');

const toBytes = (plaintext: Uint8Array | string): Uint8Array =>
  typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : plaintext;

/**
 * Encrypts `plaintext` to a recipient's public encryption key as a compact JWE: a fresh AES-256
 * content key (A256GCM) wrapped with RSA-OAEP-256 for an RSA key, or ECDH-ES+A256KW for X25519.
 */
export async function encryptFor(recipientKey: PublicJwk, plaintext: Uint8Array | string): Promise<string> {
  const alg = keyWrapAlgorithmOf(recipientKey);
  let key;
  try {
    key = await importJWK(publicEncryptionJwk(recipientKey) as JWK, alg);
  } catch (error) {
    throw new EnvelopeError(
      'invalid_key',
      `The recipient's encryption key could not be imported: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
  return new CompactEncrypt(toBytes(plaintext)).setProtectedHeader({ alg, enc: 'A256GCM' }).encrypt(key);
}

/** A compact JWS whose signature verified with the public key in its own header. */
export type { VerifiedJws };

/**
 * Verifies a compact JWS the way the relay does (docs/reference/api.md): `alg` EdDSA or ES256,
 * the signer's public `jwk` in the protected header and fitting `alg`, no `crit`. The result
 * names the signer by the key's thumbprint; callers compare that with the address they expect.
 */
export async function verifyCompactJws(jws: unknown, messageId?: string): Promise<VerifiedJws> {
  const malformed = (detail: string, cause?: unknown) =>
    new EnvelopeError('malformed_signature', detail, messageId, cause === undefined ? undefined : { cause });
  if (typeof jws !== 'string') throw malformed('The signature must be a compact JWS string.');
  const parts = jws.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL_PART.test(part)))
    throw malformed('The signature is not three base64url parts joined by ".".');
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(jws);
  } catch (error) {
    throw malformed('The JWS header is not base64url JSON.', error);
  }
  const alg = header['alg'];
  if (alg !== 'EdDSA' && alg !== 'ES256') throw malformed(`The JWS alg must be EdDSA or ES256, not ${String(alg)}.`);
  if (header['crit'] !== undefined) throw malformed('The JWS header must not carry "crit".');
  const headerJwk = header['jwk'];
  if (typeof headerJwk !== 'object' || headerJwk === null || 'd' in headerJwk)
    throw malformed('The JWS header must hold the signer\'s public "jwk".');
  let jwk: PublicJwk;
  try {
    if (signingAlgorithmOf(headerJwk) !== alg)
      throw new Error(`an ${alg} signature needs a ${alg === 'EdDSA' ? 'Ed25519' : 'P-256'} key`);
    jwk = publicSigningJwk(headerJwk);
  } catch (error) {
    throw malformed(`The header's jwk does not fit: ${(error as Error).message}`, error);
  }
  let key;
  try {
    key = await importJWK(jwk as JWK, alg);
  } catch (error) {
    throw malformed(`The header's jwk is not a valid ${alg} public key.`, error);
  }
  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(jws, key, { algorithms: [alg] }));
  } catch (error) {
    throw new EnvelopeError('bad_signature', 'The signature does not verify with the key in its header.', messageId, {
      cause: error,
    });
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder().decode(payloadBytes));
  } catch (error) {
    throw malformed('The signed payload is not JSON.', error);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw malformed('The signed payload is not a JSON object.');
  return { alg, jwk, address: deriveAddress(jwk), payload: payload as Record<string, unknown> };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Signs the claims of a message whose content is already encrypted, as the relay and the recipient check them. */
export async function signMessage(
  sender: PeerIdentity,
  message: Pick<OutgoingMessage, 'message_id' | 'to_address' | 'message_type' | 'encrypted_content'>,
  iat: number = nowSeconds(),
): Promise<string> {
  const claims: MessageClaims = {
    message_id: message.message_id,
    from: sender.address,
    to: message.to_address,
    type: message.message_type,
    sha256: contentSha256(message.encrypted_content),
    iat,
  };
  return sender.sign({ ...claims });
}

export interface SealOptions {
  /** Default `text`; 1-50 characters, chosen by the clients and not interpreted by the relay. */
  readonly type?: string;
  /** Default a new UUID v4. Reuse the id when retrying, so the relay de-duplicates. */
  readonly messageId?: string;
}

/** Encrypts `plaintext` to `recipient`, then signs the result: a request body for `POST /api/v1/message/relay`. */
export async function sealMessage(
  sender: PeerIdentity,
  recipient: Recipient,
  plaintext: Uint8Array | string,
  options: SealOptions = {},
): Promise<OutgoingMessage> {
  const messageId = options.messageId ?? randomUUID();
  const type = options.type ?? 'text';
  if (type.length < 1 || type.length > MAX_MESSAGE_TYPE_LENGTH)
    throw new RangeError(`message_type is 1-${MAX_MESSAGE_TYPE_LENGTH} characters.`);
  const encrypted = await encryptFor(recipient.encryption_key, plaintext);
  const size = Buffer.byteLength(encrypted, 'utf8');
  if (size > MAX_ENCRYPTED_CONTENT_BYTES) {
    throw new EnvelopeError(
      'content_too_large',
      `The JWE is ${size} bytes; the relay accepts at most ${MAX_ENCRYPTED_CONTENT_BYTES}. Send less than about 48 KiB of plaintext.`,
      messageId,
    );
  }
  const unsigned = {
    message_id: messageId,
    from_address: sender.address,
    to_address: recipient.address,
    message_type: type,
    encrypted_content: encrypted,
  };
  return { ...unsigned, signature: await signMessage(sender, unsigned) };
}

/**
 * The same message signed again with a current `iat`. A retry more than 300 s after the first
 * attempt needs this: the relay refuses old signatures, but de-duplicates by id and content, so
 * re-signing is safe.
 */
export async function resignMessage(sender: PeerIdentity, message: OutgoingMessage): Promise<OutgoingMessage> {
  return { ...message, signature: await signMessage(sender, message) };
}

/** A sender whose signature verified end to end over a message. */
export interface VerifiedSender {
  readonly address: string;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
  readonly claims: MessageClaims;
}

/**
 * Checks a message's signature end to end, without trusting the relay: the JWS verifies with the
 * jwk in its header, that jwk's thumbprint is `from_address`, and the signed id, addresses, type
 * and ciphertext hash are this message's. `iat` is not checked for freshness here: a message may
 * wait in a mailbox for days, and the relay already bounded it when it accepted the message.
 */
export async function verifyMessageSignature(message: OutgoingMessage): Promise<VerifiedSender> {
  const id = message.message_id;
  const verified = await verifyCompactJws(message.signature, id);
  if (verified.address !== message.from_address) {
    throw new EnvelopeError(
      'sender_mismatch',
      `The message claims to be from ${message.from_address} but is signed by the key of ${verified.address}.`,
      id,
    );
  }
  const claims = verified.payload;
  const differs: string[] = [];
  if (typeof claims['message_id'] !== 'string' || claims['message_id'].toLowerCase() !== id.toLowerCase())
    differs.push('message_id');
  if (claims['from'] !== message.from_address) differs.push('from');
  if (claims['to'] !== message.to_address) differs.push('to');
  if (claims['type'] !== message.message_type) differs.push('type');
  if (differs.length > 0)
    throw new EnvelopeError('claims_mismatch', `The signed ${differs.join(', ')} differ from the message.`, id);
  if (claims['sha256'] !== contentSha256(message.encrypted_content)) {
    throw new EnvelopeError(
      'content_hash_mismatch',
      'The SHA-256 of encrypted_content is not the one the sender signed.',
      id,
    );
  }
  const iat = claims['iat'];
  if (typeof iat !== 'number' || !Number.isFinite(iat))
    throw new EnvelopeError('malformed_signature', 'The signed payload has no numeric "iat".', id);
  return {
    address: verified.address,
    alg: verified.alg,
    jwk: verified.jwk,
    claims: {
      message_id: id,
      from: message.from_address,
      to: message.to_address,
      type: message.message_type,
      sha256: claims['sha256'],
      iat,
    },
  };
}

/**
 * Opens a received message: verifies the sender's signature end to end, checks it is addressed
 * to `recipient`, then decrypts it. Verification comes first so that nothing unauthenticated
 * reaches the decryptor.
 */
export async function openMessage(recipient: PeerIdentity, message: RelayedMessage): Promise<OpenedMessage> {
  const sender = await verifyMessageSignature(message);
  if (message.to_address !== recipient.address) {
    throw new EnvelopeError(
      'wrong_recipient',
      `The message is for ${message.to_address}, not ${recipient.address}.`,
      message.message_id,
    );
  }
  if (!isCompactJwe(message.encrypted_content)) {
    throw new EnvelopeError(
      'decryption_failed',
      'encrypted_content is not a compact JWE (five base64url parts).',
      message.message_id,
    );
  }
  const plaintext = await recipient.decrypt(message.encrypted_content, message.message_id);
  return {
    message_id: message.message_id,
    from_address: message.from_address,
    to_address: message.to_address,
    message_type: message.message_type,
    encrypted_content: message.encrypted_content,
    signature: message.signature,
    accepted_at: message.accepted_at,
    ...(message.expires_at === undefined ? {} : { expires_at: message.expires_at }),
    ...(message.cursor === undefined ? {} : { cursor: message.cursor }),
    plaintext,
    text: new TextDecoder().decode(plaintext),
    sender_key: sender.jwk,
    sender_alg: sender.alg,
    signed_at: sender.claims.iat,
  };
}

/** A registration JWS, verified: the key's thumbprint is the signed address. */
export interface VerifiedRegistration {
  readonly address: string;
  readonly signing_key: PublicJwk;
  readonly encryption_key: PublicJwk;
  readonly connection_info: Readonly<Record<string, unknown>>;
  readonly iat: number;
}

/** Builds the registration JWS for `POST /api/v1/peer/register`. */
export async function signRegistration(
  identity: PeerIdentity,
  connectionInfo: Readonly<Record<string, unknown>> = {},
): Promise<string> {
  return identity.sign({
    address: identity.address,
    encryption_key: { ...identity.encryptionKey },
    connection_info: { ...connectionInfo },
    iat: nowSeconds(),
  });
}

/** Verifies a peer's registration JWS, so its encryption key can be trusted without trusting the relay. */
export async function verifyRegistration(jws: string): Promise<VerifiedRegistration> {
  const verified = await verifyCompactJws(jws);
  const payload = verified.payload;
  if (payload['address'] !== verified.address) {
    throw new EnvelopeError(
      'untrusted_peer_key',
      'The registration is not signed by the key whose thumbprint is its address.',
    );
  }
  const iat = payload['iat'];
  if (typeof iat !== 'number') throw new EnvelopeError('malformed_signature', 'The registration has no numeric "iat".');
  const info = payload['connection_info'] ?? {};
  return {
    address: verified.address,
    signing_key: verified.jwk,
    encryption_key: publicEncryptionJwk(payload['encryption_key']),
    connection_info:
      typeof info === 'object' && info !== null && !Array.isArray(info) ? (info as Record<string, unknown>) : {},
    iat,
  };
}

/** Whether two public keys are the same key (their RFC 7638 thumbprints are equal). */
export function sameKey(a: PublicJwk, b: PublicJwk): boolean {
  try {
    return jwkThumbprint(a) === jwkThumbprint(b);
  } catch {
    return false;
  }
}

const isRelayedMessage = TypeCompiler.Compile(RelayedMessageSchema);

/** A relayed message from parsed JSON (a mailbox item or a stream frame), or undefined if it breaks the contract. */
export function asRelayedMessage(value: unknown): RelayedMessage | undefined {
  if (!isRelayedMessage.Check(value)) return undefined;
  // Only the message's own members: a frame's `type` is not part of it.
  const {
    message_id,
    from_address,
    to_address,
    message_type,
    encrypted_content,
    signature,
    accepted_at,
    expires_at,
    cursor,
  } = value;
  return {
    message_id,
    from_address,
    to_address,
    message_type,
    encrypted_content,
    signature,
    accepted_at,
    ...(expires_at === undefined ? {} : { expires_at }),
    ...(cursor === undefined ? {} : { cursor }),
  };
}
