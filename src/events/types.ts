/** Every event the relay writes, as a discriminated union on `type` (the Avro record name). */

interface EventBase {
  readonly event_id: string;
  /** Milliseconds since the epoch (Avro timestamp-millis). */
  readonly occurred_at: number;
}

export interface MessageSent extends EventBase {
  readonly message_id: string;
  readonly from_address: string;
  readonly to_address: string;
  readonly message_type: string;
  readonly encrypted_content: string;
  readonly content_sha256: string;
  readonly signature: string;
  readonly node_id: string;
  /**
   * Milliseconds since the epoch at which the relay stops offering the message undelivered.
   * Null (or absent) in events written before expiry existed; see `expiresAtOf` in src/events/lifetime.ts.
   */
  readonly expires_at?: number | null;
}

export interface MessageDelivered extends EventBase {
  readonly message_id: string;
  readonly to_address: string;
  readonly via: 'http' | 'stream';
}

export interface MessageExpired extends EventBase {
  readonly message_id: string;
  readonly to_address: string;
}

export interface PeerRegistered extends EventBase {
  readonly address: string;
  readonly signing_key: string;
  readonly encryption_key: string;
  readonly connection_info: string;
  readonly registration: string;
  /**
   * When the peer signed the registration (its `iat`), in milliseconds. 0 in events written before
   * the field existed (Avro's default); `registrationSignedAt` reads the JWS for those.
   */
  readonly signed_at?: number;
}

/** A signed `iat` (seconds, possibly fractional) as the whole milliseconds `signed_at` holds. */
export const iatMillis = (iat: number): number => Math.floor(iat * 1000);

/**
 * When the peer signed a registration, in milliseconds: `signed_at`, or for an event written
 * before that field, the `iat` inside the JWS it carries (verified when the relay accepted it); 0
 * if neither can be read. Read models keep each peer's newest signed registration by this time.
 */
export function registrationSignedAt(event: PeerRegistered): number {
  if (event.signed_at !== undefined && event.signed_at > 0) return event.signed_at;
  try {
    const claims = JSON.parse(Buffer.from(event.registration.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iat?: unknown;
    };
    return typeof claims.iat === 'number' && Number.isFinite(claims.iat) ? iatMillis(claims.iat) : 0;
  } catch {
    return 0;
  }
}

export interface PeerPresenceChanged extends EventBase {
  readonly address: string;
  readonly online: boolean;
  readonly node_id: string;
}

export interface AnchoredRange {
  readonly partition: number;
  readonly first_offset: number;
  readonly next_offset: number;
}

/** A batch of messages was anchored on chain (schemas/AnchorCommitted.avsc; docs/guides/anchoring.md). */
export interface AnchorCommitted extends EventBase {
  readonly root: string;
  readonly tree_size: number;
  readonly chain_id: number;
  readonly contract: string;
  readonly tx_hash: string;
  readonly block_number: number;
  readonly block_hash: string;
  readonly block_time: number;
  readonly mailbox_topic: string;
  readonly ranges: readonly AnchoredRange[];
  /** The message of each leaf, by leaf index. */
  readonly message_ids: readonly string[];
  /** 32-byte leaf hashes, concatenated in leaf order. */
  readonly leaf_hashes: Buffer;
}

export interface EventPayloads {
  MessageSent: MessageSent;
  MessageDelivered: MessageDelivered;
  MessageExpired: MessageExpired;
  PeerRegistered: PeerRegistered;
  PeerPresenceChanged: PeerPresenceChanged;
  AnchorCommitted: AnchorCommitted;
}

export type EventType = keyof EventPayloads;

export const EVENT_TYPES: readonly EventType[] = [
  'MessageSent',
  'MessageDelivered',
  'MessageExpired',
  'PeerRegistered',
  'PeerPresenceChanged',
  'AnchorCommitted',
];

export type RelayEvent = { [T in EventType]: { readonly type: T; readonly data: EventPayloads[T] } }[EventType];

export const EVENT_NAMESPACE = 'relay.events';

/** The registry subject of an event type (RecordNameStrategy: the record's full name). */
export const subjectOf = (type: EventType): string => `${EVENT_NAMESPACE}.${type}`;

export const isEventType = (value: string): value is EventType => (EVENT_TYPES as readonly string[]).includes(value);
