/**
 * The reference client for Relay, importable as a library:
 *
 *   const identity = await PeerIdentity.generate();          // Ed25519 + RSA-OAEP-256 (2048)
 *   const client = new RelayClient({ baseUrl, identity });
 *   await client.register();
 *   await client.send(peerAddress, 'hello');                  // JWE (A256GCM), signed JWS
 *   const stream = await client.openStream({ onMessage: (m) => console.log(m.text) });
 */
export { AccessTokens } from './access-tokens.js';
export {
  MAX_ENCRYPTED_CONTENT_BYTES,
  MAX_MESSAGE_TYPE_LENGTH,
  asRelayedMessage,
  contentSha256,
  encryptFor,
  isCompactJwe,
  openMessage,
  resignMessage,
  sameKey,
  sealMessage,
  signMessage,
  signRegistration,
  verifyCompactJws,
  verifyMessageSignature,
  verifyRegistration,
  type SealOptions,
  type VerifiedJws,
  type VerifiedRegistration,
  type VerifiedSender,
} from './envelope.js';
export {
  ENVELOPE_ERROR_CODES,
  EnvelopeError,
  RelayClientError,
  TRANSPORT_ERROR_CODES,
  isProblemDocument,
  type EnvelopeErrorCode,
  type ProblemDocument,
  type TransportErrorCode,
} from './errors.js';
export { HttpTransport, type TransportOptions } from './http-transport.js';
export {
  KEY_WRAP_ALGORITHMS,
  MIN_RSA_BITS,
  PeerIdentity,
  SIGNING_ALGORITHMS,
  keyWrapAlgorithmOf,
  publicEncryptionJwk,
  publicSigningJwk,
  signingAlgorithmOf,
  type ExportedIdentity,
  type IdentityOptions,
  type KeyWrapAlgorithm,
  type SigningAlgorithm,
} from './identity.js';
export { MessageStream, type StreamClosed, type StreamOptions } from './message-stream.js';
export {
  RelayClient,
  type BatchResult,
  type DrainResult,
  type ReceivedPage,
  type RejectedMessage,
  type RelayClientOptions,
  type SendTarget,
  type SentMessage,
} from './relay-client.js';
export { fetchTrusting } from './tls-fetch.js';
export { ProofError, verifyProof, type ChainCheck, type MessageProof } from './proofs.js';
export type {
  Accepted,
  MailboxPage,
  MessageClaims,
  OpenedMessage,
  OutgoingMessage,
  PeerRecord,
  Recipient,
  Registered,
  RelayedMessage,
} from './types.js';
export { deriveAddress, type PublicJwk } from '../crypto/address.js';
