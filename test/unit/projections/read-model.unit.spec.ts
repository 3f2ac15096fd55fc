import type { ConsumedRecord } from '../../../src/kafka/consumer-service.js';
import type { MessageSent, PeerRegistered, RelayEvent } from '../../../src/events/types.js';
import { LEGACY_LIFETIME_MS } from '../../../src/events/lifetime.js';
import { HANDLED_EVENTS, planBatch } from '../../../src/projections/read-model.js';

const ALICE = 'A'.repeat(43);
const BOB = 'B'.repeat(43);
const MSG_1 = '00000000-0000-4000-8000-000000000001';
const MSG_2 = '00000000-0000-4000-8000-000000000002';

let nextOffset = 0;
const record = (event: RelayEvent | undefined, partition = 3, topic = 'relay.mailbox.v1'): ConsumedRecord => {
  const base = { topic, partition, offset: String(nextOffset++), key: BOB };
  return event ? { ...base, event } : base;
};

const sent = (overrides: Partial<MessageSent> = {}): RelayEvent => ({
  type: 'MessageSent',
  data: {
    event_id: `ev-${nextOffset}`,
    occurred_at: 1_000,
    message_id: MSG_1,
    from_address: ALICE,
    to_address: BOB,
    message_type: 'text',
    encrypted_content: 'ciphertext',
    content_sha256: 'c'.repeat(64),
    signature: 'h.p.s',
    node_id: 'ingress-1',
    ...overrides,
  },
});

const delivered = (messageId: string, at: number): RelayEvent => ({
  type: 'MessageDelivered',
  data: { event_id: `ev-${nextOffset}`, occurred_at: at, message_id: messageId, to_address: BOB, via: 'http' },
});

const expired = (messageId: string, at: number): RelayEvent => ({
  type: 'MessageExpired',
  data: { event_id: `ev-${nextOffset}`, occurred_at: at, message_id: messageId, to_address: BOB },
});

const registered = (address: string, at: number, overrides: Partial<PeerRegistered> = {}): RelayEvent => ({
  type: 'PeerRegistered',
  data: {
    event_id: `ev-${nextOffset}`,
    occurred_at: at,
    address,
    signing_key: `{"kty":"OKP","at":${at}}`,
    encryption_key: `{"kty":"OKP","crv":"X25519","at":${at}}`,
    connection_info: `{"at":${at}}`,
    registration: `registration-${at}`,
    signed_at: at,
    ...overrides,
  },
});

const presence = (address: string, online: boolean, at: number): RelayEvent => ({
  type: 'PeerPresenceChanged',
  data: { event_id: `ev-${nextOffset}`, occurred_at: at, address, online, node_id: 'ingress-1' },
});

describe('planBatch', () => {
  beforeEach(() => {
    nextOffset = 100;
  });

  it('handles every event type the read model reads', () => {
    expect([...HANDLED_EVENTS].sort()).toEqual([
      'AnchorCommitted',
      'MessageDelivered',
      'MessageExpired',
      'MessageSent',
      'PeerPresenceChanged',
      'PeerRegistered',
    ]);
  });

  it('gives empty lists for an empty batch', () => {
    expect(planBatch([])).toEqual({ messages: [], deliveries: [], expiries: [], peers: [], presence: [], anchors: [] });
  });

  it('maps a MessageSent onto a message row with its partition and offset', () => {
    const plan = planBatch([record(sent({ occurred_at: 1234 }), 7)]);
    expect(plan.messages).toEqual([
      {
        id: MSG_1,
        sender: ALICE,
        receiver: BOB,
        type: 'text',
        content: 'ciphertext',
        contentSha256: 'c'.repeat(64),
        signature: 'h.p.s',
        acceptedAt: 1234,
        expiresAt: 1234 + LEGACY_LIFETIME_MS,
        partition: 7,
        offset: '100',
      },
    ]);
    expect(plan.deliveries).toEqual([]);
    expect(plan.peers).toEqual([]);
  });

  it('keeps the first row of a message id sent twice, with its partition and offset', () => {
    const plan = planBatch([
      record(sent({ encrypted_content: 'first', occurred_at: 1 }), 2),
      record(sent({ message_id: MSG_2 }), 2),
      record(sent({ encrypted_content: 'second', occurred_at: 2 }), 5),
    ]);
    expect(plan.messages).toHaveLength(2);
    const first = plan.messages.find((m) => m.id === MSG_1);
    expect(first).toMatchObject({ content: 'first', acceptedAt: 1, partition: 2, offset: '100' });
    expect(plan.messages.map((m) => m.id)).toEqual([MSG_1, MSG_2]);
  });

  it('stamps deliveries by message id, the first one winning', () => {
    const plan = planBatch([record(delivered(MSG_1, 10)), record(delivered(MSG_2, 20)), record(delivered(MSG_1, 30))]);
    expect(plan.deliveries).toEqual([
      { key: MSG_1, at: 10 },
      { key: MSG_2, at: 20 },
    ]);
    expect(plan.expiries).toEqual([]);
  });

  it('stamps expiries by message id, the first one winning', () => {
    const plan = planBatch([record(expired(MSG_2, 50)), record(expired(MSG_2, 60)), record(expired(MSG_1, 70))]);
    expect(plan.expiries).toEqual([
      { key: MSG_2, at: 50 },
      { key: MSG_1, at: 70 },
    ]);
    expect(plan.deliveries).toEqual([]);
  });

  it('takes the expiry a MessageSent carries', () => {
    const plan = planBatch([record(sent({ occurred_at: 1000, expires_at: 3000 }))]);
    expect(plan.messages[0]?.expiresAt).toBe(3000);
  });

  it('gives a MessageSent without expires_at (written before expiry existed) 30 days', () => {
    expect(planBatch([record(sent({ occurred_at: 1000, expires_at: null }))]).messages[0]?.expiresAt).toBe(
      1000 + 30 * 86_400_000,
    );
  });

  it('settles a message by its first MessageDelivered or MessageExpired: a delivery after an expiry changes nothing', () => {
    const plan = planBatch([record(sent()), record(expired(MSG_1, 10)), record(delivered(MSG_1, 20))]);
    expect(plan.messages.map((m) => m.id)).toEqual([MSG_1]);
    expect(plan.expiries).toEqual([{ key: MSG_1, at: 10 }]);
    expect(plan.deliveries).toEqual([]);
  });

  it('settles a message by its first MessageDelivered or MessageExpired: an expiry after a delivery changes nothing', () => {
    const plan = planBatch([
      record(sent()),
      record(delivered(MSG_1, 10)),
      record(expired(MSG_1, 20)),
      record(expired(MSG_1, 30)),
    ]);
    expect(plan.deliveries).toEqual([{ key: MSG_1, at: 10 }]);
    expect(plan.expiries).toEqual([]);
  });

  it('settles each message on its own', () => {
    const plan = planBatch([
      record(expired(MSG_1, 10)),
      record(delivered(MSG_2, 20)),
      record(delivered(MSG_1, 30)),
      record(expired(MSG_2, 40)),
    ]);
    expect(plan.expiries).toEqual([{ key: MSG_1, at: 10 }]);
    expect(plan.deliveries).toEqual([{ key: MSG_2, at: 20 }]);
  });

  it('keeps the newest signed registration of each address, with its partition and offset', () => {
    const plan = planBatch([
      record(registered(ALICE, 1), 0, 'relay.peers.v1'),
      record(registered(BOB, 2), 0, 'relay.peers.v1'),
      record(registered(ALICE, 3), 4, 'relay.peers.v1'),
    ]);
    expect(plan.peers).toHaveLength(2);
    expect(plan.peers.find((p) => p.address === ALICE)).toEqual({
      address: ALICE,
      signingKey: '{"kty":"OKP","at":3}',
      encryptionKey: '{"kty":"OKP","crv":"X25519","at":3}',
      connectionInfo: '{"at":3}',
      registration: 'registration-3',
      signedAt: 3,
      firstAt: 1,
      at: 3,
      partition: 4,
      offset: '102',
    });
    expect(plan.peers.find((p) => p.address === BOB)).toMatchObject({ at: 2, offset: '101' });
  });

  it('keeps the last presence of each address', () => {
    const plan = planBatch([
      record(presence(ALICE, true, 1)),
      record(presence(BOB, true, 2)),
      record(presence(ALICE, false, 3)),
      record(presence(BOB, false, 4)),
      record(presence(BOB, true, 5)),
    ]);
    expect(plan.presence).toHaveLength(2);
    expect(plan.presence.find((p) => p.key === ALICE)).toEqual({ key: ALICE, at: 3, online: false });
    expect(plan.presence.find((p) => p.key === BOB)).toEqual({ key: BOB, at: 5, online: true });
  });

  it('ignores dead-lettered records (no event)', () => {
    expect(planBatch([record(undefined), record(undefined)])).toEqual({
      messages: [],
      deliveries: [],
      expiries: [],
      peers: [],
      presence: [],
      anchors: [],
    });
    nextOffset = 200;
    const plan = planBatch([
      record(undefined),
      record(sent({ encrypted_content: 'kept' })),
      record(undefined),
      record(delivered(MSG_1, 9)),
    ]);
    expect(plan.messages).toHaveLength(1);
    expect(plan.messages[0]).toMatchObject({ content: 'kept', offset: '201' });
    expect(plan.deliveries).toEqual([{ key: MSG_1, at: 9 }]);
  });

  it('does not change its input', () => {
    const records = [record(sent()), record(registered(ALICE, 1))];
    const copy = structuredClone(records);
    planBatch(records);
    expect(records).toEqual(copy);
  });
});

describe('planBatch and batch boundaries', () => {
  it('keeps the first registration time of a peer registered twice in one batch', () => {
    const registered = (offset: string, at: number): ConsumedRecord => ({
      topic: 't',
      partition: 0,
      offset,
      key: 'A',
      event: {
        type: 'PeerRegistered',
        data: {
          event_id: offset,
          occurred_at: at,
          address: 'A',
          signing_key: `k${offset}`,
          encryption_key: 'e',
          connection_info: '{}',
          registration: 'r',
          signed_at: at,
        },
      },
    });
    const [peer] = planBatch([registered('1', 1000), registered('2', 2000)]).peers;
    expect(peer).toMatchObject({ firstAt: 1000, at: 2000, signingKey: 'k2', offset: '2' });
  });
});
