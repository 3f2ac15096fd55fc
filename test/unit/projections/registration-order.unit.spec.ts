import fc from 'fast-check';
import { iatMillis, registrationSignedAt, type PeerRegistered } from '../../../src/events/types.js';
import type { ConsumedRecord } from '../../../src/kafka/consumer-service.js';
import { planBatch } from '../../../src/projections/read-model.js';

// A peer's read-model row holds its newest signed registration, whatever order the registrations
// reach the log in: replaying an older one must not bring back an older key.
const ALICE = 'A'.repeat(43);

/** A registration JWS-shaped string whose payload holds `iat` (the signature is not checked here). */
const jws = (claims: object) =>
  `eyJhbGciOiJFZERTQSJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

const registration = (
  key: string,
  iatSeconds: number,
  options: { offset?: number; occurredAt?: number; withSignedAt?: boolean } = {},
): ConsumedRecord => {
  const data: PeerRegistered = {
    event_id: `ev-${key}`,
    occurred_at: options.occurredAt ?? 1_000,
    address: ALICE,
    signing_key: '{"kty":"OKP"}',
    encryption_key: `{"kty":"OKP","crv":"X25519","x":"${key}"}`,
    connection_info: '{}',
    registration: jws({ address: ALICE, encryption_key: key, iat: iatSeconds }),
    ...(options.withSignedAt === false ? {} : { signed_at: iatMillis(iatSeconds) }),
  };
  return {
    topic: 'relay.peers.v1',
    partition: 0,
    offset: String(options.offset ?? 0),
    key: ALICE,
    event: { type: 'PeerRegistered', data },
  };
};

const keyOf = (records: ConsumedRecord[]) => planBatch(records).peers[0]?.encryptionKey;

describe('registration order in the read model', () => {
  it('keeps a newer registration when an older one is replayed after it', () => {
    expect(keyOf([registration('new', 2_000, { offset: 1 }), registration('old', 1_000, { offset: 2 })])).toContain(
      '"new"',
    );
  });

  it('takes a newer registration over an older one before it', () => {
    expect(keyOf([registration('old', 1_000, { offset: 1 }), registration('new', 2_000, { offset: 2 })])).toContain(
      '"new"',
    );
  });

  it('keeps the first in the log of two registrations signed at the same time', () => {
    expect(
      keyOf([registration('first', 1_000, { offset: 1 }), registration('second', 1_000, { offset: 2 })]),
    ).toContain('"first"');
  });

  it('orders by milliseconds: a fractional iat counts', () => {
    expect(
      keyOf([registration('later', 1_000.5, { offset: 1 }), registration('earlier', 1_000.25, { offset: 2 })]),
    ).toContain('"later"');
  });

  it('reads iat from the JWS of an event written before signed_at existed', () => {
    const legacy = registration('legacy-new', 3_000, { offset: 1, withSignedAt: false });
    expect(keyOf([legacy, registration('old', 2_000, { offset: 2 })])).toContain('"legacy-new"');
    expect(planBatch([legacy]).peers[0]?.signedAt).toBe(3_000_000);
  });

  it('keeps the time of the first registration in the batch as registered_at, whichever wins', () => {
    const [peer] = planBatch([
      registration('new', 2_000, { offset: 1, occurredAt: 10 }),
      registration('old', 1_000, { offset: 2, occurredAt: 20 }),
    ]).peers;
    expect(peer).toMatchObject({ firstAt: 10, at: 10, signedAt: 2_000_000, offset: '1' });
  });

  it('ends at the newest signed registration for any arrival order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 12 }), (iats) => {
        const records = iats.map((iat, i) => registration(`k${iat}`, iat, { offset: i }));
        expect(keyOf(records)).toContain(`"k${Math.max(...iats)}"`);
      }),
    );
  });
});

describe('registrationSignedAt', () => {
  const base: PeerRegistered = {
    event_id: 'e',
    occurred_at: 1,
    address: ALICE,
    signing_key: '{}',
    encryption_key: '{}',
    connection_info: '{}',
    registration: jws({ iat: 5 }),
  };

  it('takes signed_at when the event has it', () => {
    expect(registrationSignedAt({ ...base, signed_at: 42 })).toBe(42);
  });

  it("reads the JWS when signed_at is absent or 0 (Avro's default for older events)", () => {
    expect(registrationSignedAt(base)).toBe(5_000);
    expect(registrationSignedAt({ ...base, signed_at: 0 })).toBe(5_000);
  });

  it.each(['', 'not-a-jws', 'a.!!!.c', jws({ iat: 'soon' }), jws({ nothing: true }), jws({ iat: null })])(
    'gives 0 for a registration %j it cannot read',
    (text) => {
      expect(registrationSignedAt({ ...base, registration: text })).toBe(0);
    },
  );
});
