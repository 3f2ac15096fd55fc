import { sleep } from '../../src/lifecycle/service.js';
import { stack } from '../helpers/processes.js';
import { eventually, messagesProjected } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { readTopic } from '../helpers/topic-reader.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';

const CLUSTER = '127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094';

// The relay on a 3-broker cluster (replication 3, min.insync.replicas 2): killing the broker
// that leads the mailbox partitions interrupts sending only while a new leader is elected, and
// every message the relay acknowledged is in the log where its answer said, and reaches the read
// model.
describe('failover when a broker dies', () => {
  let relay: RunningRelay;

  beforeAll(async () => {
    await stack(['up-cluster'], {}, 240_000);
    relay = await startRelay('failover', {
      RELAY_KAFKA_BROKERS: CLUSTER,
      RELAY_TOPIC_REPLICATION: '3',
      RELAY_TOPIC_PARTITIONS: '3',
    });
  }, 300_000);

  afterAll(async () => {
    await relay?.stop();
    await stack(['down-cluster']);
  }, 120_000);

  it('keeps accepting after the leader is killed and loses nothing it acknowledged', async () => {
    const admin = relay.ctx.kafka.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [relay.ctx.topics.mailbox] });
    await admin.disconnect();
    const partitions = metadata.topics[0]?.partitions ?? [];
    expect(partitions.every((p) => p.replicas.length === 3)).toBe(true);
    const victim = partitions[0]?.leader as number;

    const sender = TestPeer.create();
    const recipients = Array.from({ length: 12 }, () => TestPeer.create().address);
    const accepted: { id: string; at: number; partition: number; offset: string }[] = [];
    let refused = 0;
    let running = true;
    const worker = async (w: number) => {
      let i = 0;
      while (running) {
        const message = await sender.message(recipients[(w + i++) % recipients.length] as string);
        const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message).catch(() => undefined);
        if (answer?.status === 202) {
          const { partition, offset } = answer.body as { partition: number; offset: string };
          accepted.push({ id: message['message_id'] as string, at: Date.now(), partition, offset });
        } else refused++;
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await eventually(async () => (accepted.length >= 200 ? true : undefined), 30_000, 'traffic before the kill');

    await stack(['kill-node', String(victim)]);
    const killedAt = Date.now();
    await eventually(
      async () => (accepted.some((a) => a.at > killedAt + 500) ? true : undefined),
      60_000,
      'acceptance after the kill',
    );
    await sleep(3000);
    running = false;
    await Promise.all(workers);

    const after = accepted.filter((a) => a.at > killedAt);
    const firstAfter = Math.min(...after.map((a) => a.at));
    relay.ctx.log.warn(
      { victim, accepted: accepted.length, refused, gap_ms: firstAfter - killedAt, accepted_after_kill: after.length },
      'failover',
    );
    expect(after.length).toBeGreaterThan(0);

    // Each 202 named the partition and offset of its event: that record holds that message.
    const logged = new Map(
      (await readTopic(relay.ctx, relay.ctx.topics.mailbox)).map((l) => [`${l.partition}/${l.offset}`, l.event]),
    );
    const misplaced = accepted.filter((a) => {
      const event = logged.get(`${a.partition}/${a.offset}`);
      return event?.type !== 'MessageSent' || event.data.message_id !== a.id;
    });
    expect(misplaced).toEqual([]);

    const ids = accepted.map((a) => a.id);
    await messagesProjected(relay.ctx.pool, ids, 90_000, 'every acknowledged message in the read model');
  }, 240_000);
});
