import type { PublicJwk } from '../crypto/address.js';
import type { RelayedMessage } from '../api/frames.js';
import type { MailboxPage as WireMailboxPage, MessageView } from '../api/messages.js';
import type { PeerView } from '../api/peers.js';
import type { SigningAlgorithm } from './identity.js';

// Shapes on the wire keep the API's snake_case names (docs/reference/api.md), so a value can be
// compared with, logged as, or sent as what the relay sees without translation.

/** A message as the relay hands it over: `GET /api/v1/messages` items and stream `message` frames. */
export type { RelayedMessage };

/** The body of `POST /api/v1/message/relay`: a sealed, signed message (encrypted_content is the compact JWE, signature the sender's compact JWS). */
export type OutgoingMessage = Omit<MessageView, 'accepted_at' | 'cursor'>;

/** The payload the sender signs for each message. */
export interface MessageClaims {
  readonly message_id: string;
  readonly from: string;
  readonly to: string;
  readonly type: string;
  /** base64url SHA-256 of the UTF-8 bytes of `encrypted_content`. */
  readonly sha256: string;
  /** Signing time, seconds since the epoch. */
  readonly iat: number;
}

/** A received message whose signature verified end to end and whose content decrypted. */
export interface OpenedMessage extends RelayedMessage {
  readonly plaintext: Uint8Array;
  /** `plaintext` decoded as UTF-8 (invalid sequences become U+FFFD). */
  readonly text: string;
  /** The sender's public signing key, whose thumbprint is `from_address`. */
  readonly sender_key: PublicJwk;
  readonly sender_alg: SigningAlgorithm;
  /** The `iat` of the sender's signature, in seconds. */
  readonly signed_at: number;
}

/** The `202` answers: where the event is in its topic, and the consistency token to read it back with. */
export type { Accepted } from '../api/messages.js';
export type { Registered } from '../api/peers.js';

/** Who to encrypt to: an address and its public encryption key. */
export interface Recipient {
  readonly address: string;
  readonly encryption_key: PublicJwk;
}

/** `GET /api/v1/peers/:address`, after the client checked that the record proves itself. */
export type PeerRecord = Omit<PeerView, 'registration'> & {
  /**
   * Whether the encryption key was checked against the peer's own signed registration. False
   * while the relay does not return the registration JWS: the key is then only as trustworthy as
   * the relay.
   */
  readonly encryption_key_attested: boolean;
};

/** `GET /api/v1/messages`, read leniently: see RelayedMessage. */
export type MailboxPage = Omit<WireMailboxPage, 'messages'> & { readonly messages: RelayedMessage[] };
