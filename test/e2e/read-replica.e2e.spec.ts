import pg from 'pg';
import { PROJECTION_NAME } from '../../src/projections/postgres-projector.js';
import { eventually } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { PrivatePostgres } from '../helpers/private-postgres.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';

type Mailbox = { messages: { message_id: string }[] };

// The relay against a private primary (RELAY_DATABASE_URL) and a hot standby made from it with
// pg_basebackup and streaming from it (RELAY_DATABASE_READ_URL). Where each read ran is read from
// relay_db_reads_total; that the replica really answers shows in what it returns while its
// replay is paused.
describe('mailbox and peer reads on a streaming replica', () => {
  let primary: PrivatePostgres;
  let replica: PrivatePostgres;
  let relay: RunningRelay;
  /** A superuser connection to the replica, to pause its replay and read its checkpoints. */
  let standby: pg.Client;
  const sender = TestPeer.create();
  const recipient = TestPeer.create();

  beforeAll(async () => {
    primary = await PrivatePostgres.start('replica-primary');
    replica = await primary.streamingReplica('replica-standby');
    standby = new pg.Client({ connectionString: replica.url() });
    await standby.connect();
    // Two ingress nodes: the second has written nothing, so a read there without a token must
    // cover no position, and the first's writes reach it only through tokens.
    relay = await startRelay(
      'read-replica',
      { RELAY_DATABASE_URL: primary.url(), RELAY_DATABASE_READ_URL: replica.url() },
      { ingressNodes: 2 },
    );
  }, 120_000);

  afterAll(async () => {
    await relay?.stop();
    await standby?.end().catch(() => undefined);
    await replica?.remove();
    await primary?.remove();
  });

  const writer = () => relay.nodes[0]?.baseUrl as string;
  const reader = () => relay.nodes[1]?.baseUrl as string;

  /** relay_db_reads_total as `target/reason` → count. */
  const readCounts = async (): Promise<Record<string, number>> =>
    Object.fromEntries(
      (await relay.ctx.metrics.dbReads.get()).values.map((v) => [`${v.labels.target}/${v.labels.reason}`, v.value]),
    );

  /** Runs `read` and returns its result with where it ran, by the counts it added to relay_db_reads_total. */
  async function servedBy<T>(read: () => Promise<T>): Promise<{ result: T; by: Record<string, number> }> {
    const before = await readCounts();
    const result = await read();
    const after = await readCounts();
    const by = Object.fromEntries(
      Object.entries(after)
        .filter(([key, n]) => n !== (before[key] ?? 0))
        .map(([key, n]) => [key, n - (before[key] ?? 0)]),
    );
    return { result, by };
  }

  async function send(): Promise<{ id: string; token: string }> {
    const message = await sender.message(recipient.address);
    const sent = await call(writer(), 'POST', '/api/v1/message/relay', message);
    expect(sent.status).toBe(202);
    return { id: message['message_id'] as string, token: sent.body['consistency_token'] as string };
  }

  const readMailbox = (token?: string) =>
    call<Mailbox>(
      reader(),
      'GET',
      `/api/v1/messages?address=${recipient.address}`,
      undefined,
      token ? { 'Consistency-Token': token } : {},
    );

  /** Resolves once the replica has replayed the projector's checkpoint past every position in `token`. */
  async function replayed(token: string): Promise<void> {
    const positions = token.split(',').map((entry) => entry.split(':'));
    await eventually(
      async () => {
        for (const [topic, partition, offset] of positions) {
          const { rows } = await standby.query<{ next_offset: string }>(
            `SELECT next_offset FROM "${relay.ctx.config.postgres.schema}".projection_checkpoints WHERE projection = $1 AND topic = $2 AND partition = $3`,
            [PROJECTION_NAME, relay.ctx.topics[topic as 'mailbox' | 'peers'], Number(partition)],
          );
          if (BigInt(rows[0]?.next_offset ?? -1) <= BigInt(offset as string)) return undefined;
        }
        return true;
      },
      30_000,
      'the replica to replay the write',
    );
  }

  const lag = async (): Promise<number | undefined> => (await relay.ctx.metrics.replicaLag.get()).values[0]?.value;

  it('serves from the replica a mailbox read and a peer lookup it has replayed the writes of', async () => {
    const registered = await call(writer(), 'POST', '/api/v1/peer/register', await recipient.registration());
    expect(registered.status).toBe(202);
    const peerToken = registered.body['consistency_token'] as string;
    const first = await send();
    await replayed(first.token);
    await replayed(peerToken);

    const mailbox = await servedBy(() => readMailbox(first.token));
    expect(mailbox.result.status).toBe(200);
    expect(mailbox.result.headers.get('relay-consistency')).toBe('consistent');
    expect(mailbox.result.body.messages.map((m) => m.message_id)).toEqual([first.id]);
    expect(mailbox.by).toEqual({ 'replica/caught_up': 1 });

    const peer = await servedBy(() =>
      call(reader(), 'GET', `/api/v1/peers/${recipient.address}`, undefined, { 'Consistency-Token': peerToken }),
    );
    expect(peer.result.status).toBe(200);
    expect(peer.result.body['address']).toBe(recipient.address);
    expect(peer.by).toEqual({ 'replica/caught_up': 1 });

    expect(
      await eventually(
        async () => ((await lag()) === 0 ? 0 : undefined),
        15_000,
        'a lag of 0 on the caught-up replica',
      ),
    ).toBe(0);
  }, 60_000);

  it('answers from the primary a read whose position the paused replica has not replayed', async () => {
    const before = await readMailbox();
    const held = before.body.messages.map((m) => m.message_id);
    await standby.query('SELECT pg_wal_replay_pause()');
    try {
      await eventually(async () =>
        (await standby.query<{ state: string }>('SELECT pg_get_wal_replay_pause_state() AS state')).rows[0]?.state ===
        'paused'
          ? true
          : undefined,
      );
      const second = await send();

      const withToken = await servedBy(() => readMailbox(second.token));
      expect(withToken.result.status).toBe(200);
      expect(withToken.result.headers.get('relay-consistency')).toBe('consistent');
      expect(withToken.result.body.messages.map((m) => m.message_id)).toEqual([...held, second.id]);
      expect(withToken.by).toEqual({ 'primary/behind': 1 });

      // Without a token, on a node that wrote nothing, the read covers no position and takes the
      // replica as it is: without the message its paused replay has not reached.
      const withoutToken = await servedBy(() => readMailbox());
      expect(withoutToken.result.body.messages.map((m) => m.message_id)).toEqual(held);
      expect(withoutToken.by).toEqual({ 'replica/caught_up': 1 });

      // The replica misses the new state for as long as replay stays paused.
      await eventually(async () => (((await lag()) ?? 0) >= 1 ? true : undefined), 15_000, 'a lag of a second or more');

      // Once it is more than 5 s behind, even a read with nothing to cover leaves it: a replica
      // that stopped replaying does not keep serving its old state. (Each node measures the lag
      // on its own clock, a second apart at most: wait for 7 s on this one.)
      await eventually(async () => (((await lag()) ?? 0) > 7 ? true : undefined), 20_000, 'a lag over 7 s');
      const stalled = await servedBy(() => readMailbox());
      expect(stalled.result.body.messages.map((m) => m.message_id)).toEqual([...held, second.id]);
      expect(stalled.by).toEqual({ 'primary/behind': 1 });
    } finally {
      await standby.query('SELECT pg_wal_replay_resume()');
    }
    await eventually(
      async () => ((await lag()) === 0 ? true : undefined),
      15_000,
      'the lag back to 0 once replay resumes',
    );
  }, 60_000);

  it('answers every read from the primary once the replica is stopped', async () => {
    await standby.end();
    await replica.kill();
    const third = await send();

    const first = await servedBy(() => readMailbox(third.token));
    expect(first.result.status).toBe(200);
    expect(first.result.body.messages.map((m) => m.message_id)).toContain(third.id);
    expect(first.by).toEqual({ 'primary/down': 1 });

    const withoutToken = await servedBy(() => readMailbox());
    expect(withoutToken.result.body.messages.map((m) => m.message_id)).toContain(third.id);
    expect(withoutToken.by).toEqual({ 'primary/down': 1 });

    const peer = await servedBy(() => call(reader(), 'GET', `/api/v1/peers/${recipient.address}`));
    expect(peer.result.status).toBe(200);
    expect(peer.by).toEqual({ 'primary/down': 1 });

    // An unmeasurable lag is no sample, not a number that would look healthy.
    await eventually(async () => ((await lag()) === undefined ? true : undefined), 15_000, 'the lag sample to go');
  }, 60_000);
});
