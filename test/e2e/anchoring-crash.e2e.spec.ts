import { createHash, randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { AnchorCommitted, RelayEvent } from '../../src/events/types.js';
import { DEV_SIGNER_KEY, startLocalChain, type LocalChain } from '../helpers/chain.js';
import { eventually, openTestContext, type TestContext } from '../helpers/context.js';
import { exited, spawnRelay } from '../helpers/processes.js';
import { TestPeer } from '../helpers/peer.js';
import { readTopic } from '../helpers/topic-reader.js';
import { privateKeyToAccount } from 'viem/accounts';

const MESSAGES = 3000;

// The anchor role SIGKILLed while a batch is open (written ahead, its transaction maybe sent) and
// started again anchors every message in exactly one tree: it finishes the open batch from the
// same log ranges instead of anchoring those messages again, and sends no transaction twice.
describe('the anchor role killed mid-batch', () => {
  let chain: LocalChain;
  let ctx: TestContext;
  const ids: string[] = [];

  /** Writes `count` MessageSent records (and a MessageDelivered for every fifth) to the mailbox topic. */
  const produce = async (count: number) => {
    const recipients = Array.from({ length: 50 }, () => TestPeer.create().address);
    const sender = TestPeer.create().address;
    const producer = ctx.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const events: RelayEvent[] = [];
    for (let i = 0; i < count; i++) {
      const id = randomUUID();
      const to = recipients[i % recipients.length] as string;
      const content = `c${i}`;
      ids.push(id);
      events.push({
        type: 'MessageSent',
        data: {
          event_id: randomUUID(),
          occurred_at: Date.now(),
          message_id: id,
          from_address: sender,
          to_address: to,
          message_type: 'text',
          encrypted_content: content,
          content_sha256: createHash('sha256').update(content).digest('base64url'),
          signature: 's',
          node_id: 'test',
        },
      });
      // Records that are not leaves move the ranges too.
      if (i % 5 === 0)
        events.push({
          type: 'MessageDelivered',
          data: { event_id: randomUUID(), occurred_at: Date.now(), message_id: id, to_address: to, via: 'http' },
        });
    }
    await producer.send({
      topic: ctx.topics.mailbox,
      acks: -1,
      messages: events.map((e) => ({ key: (e.data as { to_address: string }).to_address, value: ctx.codec.encode(e) })),
    });
    await producer.disconnect();
  };

  beforeAll(async () => {
    chain = await startLocalChain();
    ctx = await openTestContext('anchor_crash', {
      ...chain.env,
      RELAY_ANCHOR_MAX_MESSAGES: '150',
      RELAY_ANCHOR_INTERVAL_SECONDS: '1',
      RELAY_ANCHOR_CONFIRMATIONS: '2',
      RELAY_LOG_LEVEL: 'warn',
    });
    await produce(MESSAGES);
  }, 180_000);

  afterAll(async () => {
    await ctx?.cleanup();
    await chain?.stop();
  });

  const batches = async () =>
    (
      await ctx.pool.query<{ batch_id: string; tree_size: number; committed: boolean; sent: number }>(
        'SELECT batch_id, tree_size, committed_at IS NOT NULL AS committed, cardinality(tx_hashes) AS sent FROM anchor_batches',
      )
    ).rows;

  it('anchors every message exactly once across the kill', async () => {
    const first = spawnRelay('anchor', ctx.env);
    // Kill it after some batches are committed, while one is open with its transaction sent:
    // its root may be on chain already, and its AnchorCommitted is not written.
    const open = await eventually(
      async () => {
        const rows = await batches().catch(() => []);
        const openOne = rows.find((r) => !r.committed && r.sent > 0);
        return rows.some((r) => r.committed) && openOne ? openOne : undefined;
      },
      120_000,
      'a committed batch and an open one',
    );
    first.kill('SIGKILL');
    await exited(first);
    const atKill = (await batches()).filter((r) => r.committed).reduce((sum, r) => sum + r.tree_size, 0);
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(MESSAGES); // killed part-way

    const second = spawnRelay('anchor', ctx.env);
    await eventually(
      async () => {
        const rows = await batches();
        return rows.every((r) => r.committed) && rows.reduce((sum, r) => sum + r.tree_size, 0) === MESSAGES
          ? true
          : undefined;
      },
      240_000,
      'every message in a committed batch',
    );
    second.kill('SIGTERM');
    await exited(second);

    const rows = await batches();
    // The batch that was open at the kill was finished, under its own id, not replaced.
    expect(rows.find((r) => r.batch_id === open.batch_id)?.committed).toBe(true);

    const events = (await readTopic(ctx, ctx.topics.anchors)).flatMap((e) =>
      e.event.type === 'AnchorCommitted' ? [e.event.data] : [],
    );
    const byBatch = new Map<string, AnchorCommitted>(events.map((e) => [e.event_id, e]));
    expect(new Set(byBatch.keys())).toEqual(new Set(rows.map((r) => r.batch_id)));
    const leaves = [...byBatch.values()].flatMap((e) => e.message_ids);
    expect(leaves).toHaveLength(MESSAGES);
    expect(new Set(leaves)).toEqual(new Set(ids));

    // On chain: one Anchored log per batch, with the batch's root, and no transaction besides the
    // deployment and one per batch (a root sent twice would have used another nonce).
    const contract = [...byBatch.values()][0]?.contract as string;
    const logs = await chain.rpc<{ topics: string[] }[]>('eth_getLogs', [
      { fromBlock: '0x0', toBlock: 'latest', address: contract },
    ]);
    expect(logs).toHaveLength(byBatch.size);
    expect(new Set(logs.map((l) => l.topics[1]))).toEqual(new Set([...byBatch.values()].map((e) => e.root)));
    const signer = privateKeyToAccount(DEV_SIGNER_KEY).address;
    expect(Number(await chain.rpc<string>('eth_getTransactionCount', [signer, 'latest']))).toBe(1 + byBatch.size);
  }, 420_000);
  it('has a second anchor process stand by, and take over when the first is killed', async () => {
    const before = (await batches()).length;
    const active = spawnRelay('anchor', ctx.env);
    await produce(600);
    await eventually(
      async () => ((await batches()).length > before ? true : undefined),
      120_000,
      'the active process anchoring',
    );
    const standby = spawnRelay('anchor', ctx.env);
    active.kill('SIGKILL');
    await exited(active);
    await produce(600);
    await eventually(
      async () => {
        const rows = await batches();
        return rows.every((r) => r.committed) && rows.reduce((sum, r) => sum + r.tree_size, 0) === ids.length
          ? true
          : undefined;
      },
      240_000,
      'every message anchored by the process that stood by',
    );
    standby.kill('SIGTERM');
    await exited(standby);
    const leaves = (await readTopic(ctx, ctx.topics.anchors)).flatMap((e) =>
      e.event.type === 'AnchorCommitted' ? [e.event.data] : [],
    );
    const unique = new Map(leaves.map((e) => [e.event_id, e]));
    const all = [...unique.values()].flatMap((e) => e.message_ids);
    expect(all).toHaveLength(ids.length);
    expect(new Set(all)).toEqual(new Set(ids));
    const signer = privateKeyToAccount(DEV_SIGNER_KEY).address;
    expect(Number(await chain.rpc<string>('eth_getTransactionCount', [signer, 'latest']))).toBe(1 + unique.size);
  }, 420_000);
});
