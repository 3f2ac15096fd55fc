import { Type, type Static } from '@sinclair/typebox';
import {
  Address,
  Base64url,
  ConsistencyToken,
  Cursor,
  OpaqueObject,
  Offset,
  PublicJwk,
  Timestamp,
} from './primitives.js';

export const MAX_REGISTRATION = 16_384;
export const MAX_CONNECTION_INFO_BYTES = 4096;

/** The body of POST /api/v1/peer/register: the peer's signed registration (a compact JWS). */
export const RegisterRequest = Type.Object(
  { registration: Type.String({ minLength: 1, maxLength: MAX_REGISTRATION }) },
  { $id: 'RegisterRequest' },
);
export type RegisterRequest = Static<typeof RegisterRequest>;

// The encryption keys a registration may sign: their shapes here, their sizes and curves checked
// in code (peer-directory.ts), since a schema cannot count the bits of an RSA modulus.
export const RsaEncryptionKey = Type.Object({
  kty: Type.Literal('RSA'),
  n: Base64url(4096),
  e: Base64url(16),
  alg: Type.Optional(Type.String()),
});
export const X25519EncryptionKey = Type.Object({
  kty: Type.Literal('OKP'),
  crv: Type.Literal('X25519'),
  x: Base64url(64),
});

/** The 202 answer to a registration: where its event is, and the token to read it with. */
export const Registered = Type.Object(
  {
    address: Address,
    status: Type.Literal('registered'),
    partition: Type.Integer({ minimum: 0 }),
    offset: Offset,
    consistency_token: ConsistencyToken,
  },
  { $id: 'Registered' },
);
export type Registered = Static<typeof Registered>;

/** An online peer as GET /api/v1/peers/discover lists it. */
export const PeerRecord = Type.Object(
  {
    address: Address,
    signing_key: PublicJwk,
    encryption_key: PublicJwk,
    connection_info: OpaqueObject,
    last_seen: Type.Union([Timestamp, Type.Null()]),
  },
  { $id: 'PeerRecord' },
);
export type PeerRecord = Static<typeof PeerRecord>;

/** GET /api/v1/peers/{address}: the record, with presence and the registration it proves itself by. */
export const PeerView = Type.Composite(
  [
    PeerRecord,
    Type.Object({
      online: Type.Boolean(),
      registered_at: Timestamp,
      /** The JWS the peer signed, so a client can check the encryption key without trusting the relay. */
      registration: Type.String(),
    }),
  ],
  { $id: 'PeerView' },
);
export type PeerView = Static<typeof PeerView>;

/** Bounds of `limit` on GET /api/v1/peers/discover. */
export const DISCOVER_LIMIT = { minimum: 1, maximum: 200, default: 50 } as const;

export const DiscoverPage = Type.Object(
  { peers: Type.Array(PeerRecord), next_cursor: Type.Union([Cursor, Type.Null()]) },
  { $id: 'DiscoverPage' },
);
export type DiscoverPage = Static<typeof DiscoverPage>;
