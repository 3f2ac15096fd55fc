import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import confluent from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import kafkajs from 'kafkajs';
import { SCHEMAS_DIR } from '../../src/config/paths.js';
import { subjectOf, type RelayEvent } from '../../src/events/types.js';
import { rebuildReadModel } from '../../src/replay/rebuild.js';
import { eventually } from '../helpers/context.js';
import { publicJwk, TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';

// A peer registers a new encryption key; its earlier registration, public through
// GET /peers/{address}, is then replayed. The ingress refuses it, and when older registrations
// reach the log anyway (accepted by a node before the newer one was projected, or written by an
// earlier version of the relay), both read models and a rebuild keep the newest signed one.
describe('registration order', () => {
  let relay: RunningRelay;
  const peer = TestPeer.create();
  const observer = TestPeer.create();
  const x25519 = () => publicJwk(generateKeyPairSync('x25519').publicKey, 'X25519');
  const [oldKey, newKey, legacyKey, latestKey] = [x25519(), x25519(), x25519(), x25519()];
  const now = Math.floor(Date.now() / 1000);
  const millis = (iat: number) => iat * 1000;
  let older: string;
  let newer: string;

  beforeAll(async () => {
    relay = await startRelay('registration_order');
    ({ registration: older } = await peer.registration({ encryption_key: oldKey, iat: now - 60 }));
    ({ registration: newer } = await peer.registration({ encryption_key: newKey, iat: now - 20 }));
  }, 90_000);

  afterAll(async () => {
    await relay.stop();
  });

  const lookUp = async () =>
    (
      await call<{ encryption_key: unknown; registration: string }>(
        relay.baseUrl,
        'GET',
        `/api/v1/peers/${peer.address}`,
      )
    ).body;

  /** The peer as discover shows it: from the Redis presence projection, once the peer is online there. */
  const discovered = async () => {
    const answer = await call<{ peers: { address: string; encryption_key: unknown }[] }>(
      relay.baseUrl,
      'GET',
      `/api/v1/peers/discover?address=${observer.address}&limit=200`,
    );
    return answer.body.peers.find((p) => p.address === peer.address);
  };

  /** Waits until the Postgres projection has applied every record now in the peers topic. */
  const projected = async () => {
    const admin = relay.ctx.kafka.admin();
    await admin.connect();
    const ends = (await admin.fetchTopicOffsets(relay.ctx.topics.peers)).filter((p) => p.high !== '0');
    await admin.disconnect();
    await eventually(
      async () => {
        const { rows } = await relay.ctx.pool.query<{ partition: number; next_offset: string }>(
          'SELECT partition, next_offset FROM projection_checkpoints WHERE topic = $1',
          [relay.ctx.topics.peers],
        );
        return ends.every((end) => rows.some((r) => r.partition === end.partition && r.next_offset === end.high))
          ? true
          : undefined;
      },
      30_000,
      'the peers topic projected',
    );
  };

  it('refuses an older registration sent right after a newer one with 409, and applies the newer', async () => {
    expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', { registration: newer })).status).toBe(202);
    // At once, as a client would: the answer must not depend on how far the projector has got.
    const replay = await call<{ code: string; status: number; signed_at: string }>(
      relay.baseUrl,
      'POST',
      '/api/v1/peer/register',
      { registration: older },
    );
    expect(replay.status).toBe(409);
    expect(replay.contentType).toMatch(/^application\/problem\+json/);
    expect(replay.body.code).toBe('registration_superseded');
    expect(replay.body.signed_at).toBe(new Date(millis(now - 20)).toISOString());
    await eventually(
      async () => (isDeepStrictEqual((await lookUp()).encryption_key, newKey) ? true : undefined),
      30_000,
      'the registration projected',
    );
  });

  it('takes the same registration again (a retry) with 202', async () => {
    expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', { registration: newer })).status).toBe(202);
  });

  it('keeps the newest signed registration in Postgres and Redis when older ones reach the log after it', async () => {
    const { registration: legacy } = await peer.registration({ encryption_key: legacyKey, iat: now - 40 });
    const fields = (registration: string, key: object) => ({
      event_id: randomUUID(),
      occurred_at: Date.now(),
      address: peer.address,
      signing_key: JSON.stringify(peer.jwk),
      encryption_key: JSON.stringify(key),
      connection_info: '{"transport":"test"}',
      registration,
    });
    // One written by this version, with signed_at ...
    const current: RelayEvent = {
      type: 'PeerRegistered',
      data: { ...fields(older, oldKey), signed_at: millis(now - 60) },
    };
    // ... and one written by a version before signed_at existed, in that version's schema.
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'PeerRegistered.avsc'), 'utf8')) as {
      fields: { name: string }[];
    };
    const before = { ...schema, fields: schema.fields.filter((f) => f.name !== 'signed_at') };
    const { id } = await relay.ctx.codec.registry.register(
      { type: confluent.SchemaType.AVRO, schema: JSON.stringify(before) },
      { subject: subjectOf('PeerRegistered') },
    );
    const header = Buffer.alloc(5);
    header.writeInt32BE(id, 1);
    const legacyBytes = Buffer.concat([
      header,
      avro.Type.forSchema(before as avro.Schema).toBuffer(fields(legacy, legacyKey)),
    ]);
    // Then the peer comes online, so that discover (the Redis projection) shows it once it has passed the older registrations.
    const online: RelayEvent = {
      type: 'PeerPresenceChanged',
      data: { event_id: randomUUID(), occurred_at: Date.now(), address: peer.address, online: true, node_id: 'test' },
    };

    const producer = relay.ctx.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    await producer.send({
      topic: relay.ctx.topics.peers,
      acks: -1,
      messages: [relay.ctx.codec.encode(current), legacyBytes, relay.ctx.codec.encode(online)].map((value) => ({
        key: peer.address,
        value,
      })),
    });
    await producer.disconnect();

    await projected();
    const row = await lookUp();
    expect(row.encryption_key).toEqual(newKey);
    expect(row.registration).toBe(newer);
    const inRedis = await eventually(discovered, 30_000, 'the peer online in discover');
    expect(inRedis.encryption_key).toEqual(newKey);
  });

  it('rebuilds the read model to the same peer row', async () => {
    const rowOf = async () =>
      (
        await relay.ctx.pool.query<Record<string, unknown>>(
          'SELECT address, public_key, encryption_key, connection_info, registration, signed_at, registered_at, updated_at, kafka_partition, kafka_offset FROM peers WHERE address = $1',
          [peer.address],
        )
      ).rows[0];
    const live = await rowOf();
    expect(live?.['encryption_key']).toEqual(newKey);
    await rebuildReadModel(relay.ctx);
    expect(await rowOf()).toEqual(live);
  }, 120_000);

  it('still takes a registration signed later', async () => {
    const { registration: latest } = await peer.registration({ encryption_key: latestKey, iat: now });
    expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', { registration: latest })).status).toBe(202);
    await eventually(
      async () => (isDeepStrictEqual((await lookUp()).encryption_key, latestKey) ? true : undefined),
      30_000,
      'the latest registration projected',
    );
    await eventually(
      async () => (isDeepStrictEqual((await discovered())?.encryption_key, latestKey) ? true : undefined),
      30_000,
      'the latest registration in Redis',
    );
  });
});
