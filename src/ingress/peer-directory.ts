import { randomUUID } from 'node:crypto';
import { AppError } from '../errors/app-error.js';
import type { SignatureVerifier } from '../crypto/signatures.js';
import type { EventPublisher } from '../kafka/event-publisher.js';
import type { Pool } from '../postgres/pool.js';
import type { LogPosition } from '../projections/checkpoint-watch.js';
import { readSource, type ReplicaReads } from '../projections/replica-reads.js';
import { iatMillis } from '../events/types.js';
import type { PresenceStore } from '../presence/presence-store.js';
import { decodeDiscoverCursor, encodeDiscoverCursor } from '../api/cursors.js';
import {
  MAX_CONNECTION_INFO_BYTES,
  RsaEncryptionKey,
  X25519EncryptionKey,
  type DiscoverPage,
  type PeerView,
  type RegisterRequest,
  type Registered,
} from '../api/peers.js';
import { OpaqueObject, type PublicJwk } from '../api/primitives.js';
import { validator } from '../api/validate.js';
import { ReadConsistency } from './read-consistency.js';
import { invalid } from './validation.js';

export { MAX_CONNECTION_INFO_BYTES };
const MIN_RSA_BITS = 2048;
// Far beyond any online set, and exact as a JavaScript number and as a Redis LIMIT offset.
const MAX_DISCOVER_OFFSET = 1_000_000_000n;

const parseRsaKey = validator(RsaEncryptionKey, 'encryption_key');
const parseX25519Key = validator(X25519EncryptionKey, 'encryption_key');
const parseConnectionInfo = validator(OpaqueObject, 'connection_info');
const parseKeyObject = validator(OpaqueObject, 'encryption_key');

/**
 * Checks a public encryption key: RSA of 2048 bits or more (RSA-OAEP-256), or X25519 (ECDH-ES).
 * The schemas give the shapes; what they cannot say (no private part, the key's size) is here.
 */
export function checkEncryptionKey(value: unknown): PublicJwk {
  const jwk = parseKeyObject(value);
  if ('d' in jwk || 'p' in jwk)
    throw invalid('encryption_key', 'encryption_key must be a public key; it holds a private part.');
  if (jwk['kty'] === 'RSA') {
    const { n } = parseRsaKey(jwk);
    const bits = Buffer.from(n, 'base64url').length * 8;
    if (bits < MIN_RSA_BITS)
      throw invalid(
        'encryption_key',
        `An RSA encryption_key must have at least ${MIN_RSA_BITS} bits; this one has ${bits}.`,
      );
    if (jwk['alg'] !== undefined && jwk['alg'] !== 'RSA-OAEP-256')
      throw invalid('encryption_key', 'An RSA encryption_key is for RSA-OAEP-256.');
    return jwk as PublicJwk;
  }
  if (jwk['kty'] === 'OKP' && jwk['crv'] === 'X25519') {
    const { x } = parseX25519Key(jwk);
    if (Buffer.from(x, 'base64url').length !== 32)
      throw invalid('encryption_key', 'An X25519 encryption_key has a 32-byte "x".');
    return jwk as PublicJwk;
  }
  throw invalid('encryption_key', 'encryption_key must be an RSA (RSA-OAEP-256) or an X25519 (ECDH-ES) public JWK.');
}

/** Registering peers, and looking them up. */
export class PeerDirectory {
  constructor(
    private readonly deps: {
      readonly verifier: SignatureVerifier;
      readonly events: EventPublisher;
      readonly pool: Pool;
      readonly presence: PresenceStore;
      /** Lets a registration wait for the ones written before it to be projected. */
      readonly consistency: ReadConsistency;
      /** Where lookups may run when they say what they must see; registrations read the primary. */
      readonly replica?: ReplicaReads;
    },
  ) {}

  /** Verifies a signed registration and produces PeerRegistered; resolves once acknowledged. */
  async register({ registration }: RegisterRequest): Promise<Registered> {
    const verified = this.deps.verifier.verify(registration);
    const payload = verified.payload;
    if (payload['address'] !== verified.address) {
      throw new AppError('bad_signature', 'The registered "address" is not the thumbprint of the signing key.');
    }
    this.deps.verifier.checkFreshness(payload);
    const encryptionKey = checkEncryptionKey(payload['encryption_key']);
    const connectionInfo = parseConnectionInfo(payload['connection_info'] ?? {});
    const connectionJson = JSON.stringify(connectionInfo);
    if (Buffer.byteLength(connectionJson) > MAX_CONNECTION_INFO_BYTES) {
      throw invalid('connection_info', `connection_info must be at most ${MAX_CONNECTION_INFO_BYTES} bytes as JSON.`);
    }
    const signedAt = iatMillis(payload['iat'] as number); // a finite number: checkFreshness passed
    await this.refuseSuperseded(verified.address, signedAt, registration);
    const position = await this.deps.events.publishOne({
      type: 'PeerRegistered',
      data: {
        event_id: randomUUID(),
        occurred_at: Date.now(),
        address: verified.address,
        signing_key: JSON.stringify(verified.jwk),
        encryption_key: JSON.stringify(encryptionKey),
        connection_info: connectionJson,
        registration,
        signed_at: signedAt,
      },
    });
    return {
      address: verified.address,
      status: 'registered',
      ...position,
      consistency_token: ReadConsistency.token('peers', [position]),
    };
  }

  /**
   * Refuses a registration signed before the one on record, or at the same time with other
   * content: the read models would ignore it (they keep the newest signed registration), so a 202
   * would mislead, and a replayed old registration is turned away at the door. The same
   * registration again is let through (a client's retry); the read models ignore its event.
   * Decided from the log, not from how far the projector has got: it first waits until the read
   * model has applied the peer's partition up to its end, so that a registration sent right after
   * a newer one is refused as it would be a second later (past the wait's bound, it decides from
   * what the read model holds).
   */
  private async refuseSuperseded(address: string, signedAt: number, registration: string): Promise<void> {
    await this.deps.consistency.awaitLogEnd('peers', address);
    const { rows } = await this.deps.pool.query<{ signed_at: Date | null; registration: string }>(
      'SELECT signed_at, registration FROM peers WHERE address = $1',
      [address],
    );
    const held = rows[0];
    if (!held?.signed_at) return;
    const heldAt = held.signed_at.getTime();
    if (heldAt < signedAt || (heldAt === signedAt && held.registration === registration)) return;
    const at = new Date(heldAt).toISOString();
    throw new AppError(
      'registration_superseded',
      `A registration of this peer signed at ${at} is on record; to replace it, sign a new registration (its iat later than that).`,
      { extensions: { signed_at: at } },
    );
  }

  /** The registered peer, from the read model, with whether it is online now; `covering` as in MailboxReader.undelivered. */
  async get(address: string, covering?: readonly LogPosition[]): Promise<PeerView> {
    const source = readSource(this.deps.pool, this.deps.replica, covering);
    const { rows } = await source.query<{
      public_key: string;
      encryption_key: unknown;
      connection_info: unknown;
      last_seen: Date | null;
      registered_at: Date;
      registration: string;
    }>(
      `SELECT public_key, encryption_key, connection_info, last_seen AT TIME ZONE 'UTC' AS last_seen, registered_at, registration
         FROM peers WHERE address = $1`,
      [address],
    );
    const row = rows[0];
    if (!row) throw new AppError('peer_not_found', `No peer is registered at ${address}.`);
    const seen = await this.deps.presence.onlineSince(address);
    const lastSeen = Math.max(seen ?? 0, row.last_seen?.getTime() ?? 0);
    return {
      address,
      signing_key: JSON.parse(row.public_key) as PublicJwk,
      encryption_key: row.encryption_key as PublicJwk,
      connection_info: row.connection_info as Record<string, unknown>,
      last_seen: lastSeen > 0 ? new Date(lastSeen).toISOString() : null,
      online: seen !== undefined,
      registered_at: row.registered_at.toISOString(),
      registration: row.registration,
    };
  }

  async discover(excluding: string, limit: number, cursor: string | undefined): Promise<DiscoverPage> {
    const offset = cursor === undefined ? 0 : decodeDiscoverCursor(cursor, MAX_DISCOVER_OFFSET);
    const page = await this.deps.presence.discover(excluding, limit, offset);
    return { peers: page.peers, next_cursor: page.next === undefined ? null : encodeDiscoverCursor(page.next) };
  }
}
