import { PeerIdentity, ProofError, RelayClient, verifyProof as clientVerify } from '../../src/client/index.js';
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { anchorServices } from '../../src/app/roles.js';
import { PROJECT_ROOT } from '../../src/config/paths.js';
import type { AnchorCommitted } from '../../src/events/types.js';
import { runServices } from '../../src/lifecycle/service.js';
import { rebuildReadModel } from '../../src/replay/rebuild.js';
import type { MessageProof } from '../../src/anchoring/proof.js';
import { startLocalChain, type LocalChain } from '../helpers/chain.js';
import { eventually, messagesProjected } from '../helpers/context.js';
import { TestPeer } from '../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../helpers/relay.js';
import { readTopic } from '../helpers/topic-reader.js';

const exec = promisify(execFile);

// Messages sent through the relay are anchored on a real local chain, and their proofs check out
// against that chain with `relay verify-proof` alone; the chain frozen while messages are sent
// neither slows the send path nor loses or doubles an anchor.
describe('anchoring on a local chain', () => {
  let chain: LocalChain;
  let relay: RunningRelay;
  let anchor: { stop: () => Promise<void> } | undefined;
  const alice = TestPeer.create();
  const bob = TestPeer.create('ES256');
  const dir = mkdtempSync(join(tmpdir(), 'relay-proofs-'));

  const startAnchor = () => {
    const controller = new AbortController();
    const running = runServices(anchorServices(relay.ctx, true), controller.signal, relay.ctx.log);
    running.catch(() => undefined);
    anchor = {
      async stop() {
        controller.abort();
        await running.catch(() => undefined);
      },
    };
  };

  beforeAll(async () => {
    chain = await startLocalChain();
    relay = await startRelay('anchoring', {
      ...chain.env,
      RELAY_ANCHOR_INTERVAL_SECONDS: '2',
      RELAY_ANCHOR_CONFIRMATIONS: '2',
      RELAY_ANCHOR_REPLACE_AFTER_SECONDS: '5',
      RELAY_RATE_SENDER_BURST: '5000',
    });
    for (const peer of [alice, bob]) {
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
    }
  }, 180_000);

  afterAll(async () => {
    await anchor?.stop();
    await relay?.stop();
    await chain?.stop();
  });

  const send = async (from: TestPeer, to: TestPeer): Promise<string> => {
    const message = await from.message(to.address);
    const sent = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message);
    expect(sent.status).toBe(202);
    return message['message_id'] as string;
  };

  const anchoredCount = async (ids: readonly string[]) =>
    (
      await relay.ctx.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::uuid[]) AND blockchain_txid IS NOT NULL',
        [ids],
      )
    ).rows[0]?.n ?? 0;

  const verifyProof = async (proof: unknown, extra: string[] = []): Promise<{ code: number; out: string }> => {
    const file = join(dir, `proof-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(proof));
    try {
      // Only the chain's URL: no relay configuration, no Kafka, no database.
      const { stdout } = await exec(
        process.execPath,
        [`${PROJECT_ROOT}dist/cli/main.js`, 'verify-proof', '--rpc', chain.rpcUrl, ...extra, file],
        { env: { PATH: process.env['PATH'] ?? '' } },
      );
      return { code: 0, out: stdout };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, out: failed.stdout + failed.stderr };
    }
  };

  const anchorEvents = async (): Promise<AnchorCommitted[]> =>
    (await readTopic(relay.ctx, relay.ctx.topics.anchors)).flatMap((e) =>
      e.event.type === 'AnchorCommitted' ? [e.event.data] : [],
    );

  /** Every id is a leaf of exactly one anchored tree, and no tree is anchored twice on chain. */
  const expectAnchoredOnce = async (ids: readonly string[]) => {
    const events = await anchorEvents();
    const batches = new Map(events.map((e) => [e.event_id, e]));
    const leaves = [...batches.values()].flatMap((e) => e.message_ids);
    expect(new Set(leaves).size).toBe(leaves.length);
    for (const id of ids) expect(leaves).toContain(id);
    const logs = await chain.rpc<unknown[]>('eth_getLogs', [
      { fromBlock: '0x0', toBlock: 'latest', address: [...batches.values()][0]?.contract },
    ]);
    expect(logs).toHaveLength(batches.size);
    const { rows } = await relay.ctx.pool.query<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM message_anchors',
    );
    expect(rows[0]?.n).toBe(leaves.length);
  };

  it('answers 409 not_anchored_yet, then anchors, and verify-proof checks each proof against the chain alone', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await send(i % 2 ? alice : bob, i % 2 ? bob : alice));
    const first = ids[0] as string;
    const early = await eventually(
      async () => {
        const answer = await call(relay.baseUrl, 'GET', `/api/v1/messages/${first}/proof`);
        return answer.status === 404 ? undefined : answer;
      },
      15_000,
      'the message projected',
    );
    expect(early.status).toBe(409);
    expect(early.body['code']).toBe('not_anchored_yet');

    startAnchor();
    await eventually(
      async () => ((await anchoredCount(ids)) === ids.length ? true : undefined),
      90_000,
      'every message anchored',
    );
    const { rows } = await relay.ctx.pool.query<{ blockchain_txid: string; anchor_leaf_index: number }>(
      'SELECT blockchain_txid, anchor_leaf_index FROM messages WHERE id = $1',
      [first],
    );
    expect(rows[0]?.blockchain_txid).toMatch(/^0x[0-9a-f]{64}$/);

    const proofs: MessageProof[] = [];
    for (const id of ids) {
      const answer = await call<MessageProof>(relay.baseUrl, 'GET', `/api/v1/messages/${id}/proof`);
      expect(answer.status).toBe(200);
      expect(answer.body.leaf.message_id).toBe(id);
      proofs.push(answer.body);
    }
    const proof = proofs[0] as MessageProof;
    expect(proof.leaf_index).toBe(rows[0]?.anchor_leaf_index);

    for (const p of proofs.slice(0, 3)) {
      const ok = await verifyProof(p, ['--contract', p.contract, '--min-confirmations', '2']);
      expect(ok.out).toContain('proof holds');
      expect(ok.code).toBe(0);
    }

    const alteredLeaf = await verifyProof({
      ...proof,
      leaf: { ...proof.leaf, accepted_at: proof.leaf.accepted_at + 1 },
      leaf_hash: undefined,
    });
    expect(alteredLeaf.code).toBe(1);
    expect(alteredLeaf.out).toContain('does NOT hold');
    const withPath = proofs.find((p) => p.path.length > 0) as MessageProof;
    const step = withPath.path[0] as string;
    const alteredPath = await verifyProof({
      ...withPath,
      path: [`${step.slice(0, -1)}${step.endsWith('0') ? '1' : '0'}`, ...withPath.path.slice(1)],
    });
    expect(alteredPath.code).toBe(1);
    // A self-consistent proof of a root that was never anchored: the chain refutes it.
    const fakeRoot = await verifyProof({ ...proof, tree_size: 1, leaf_index: 0, path: [], root: proof.leaf_hash });
    expect(fakeRoot.code).toBe(1);
    expect(fakeRoot.out).toContain('did not anchor root');

    // The reference client fetches a proof and checks it against the chain the same way.
    const reader = new RelayClient({
      baseUrl: relay.baseUrl,
      identity: await PeerIdentity.generate({ signing: 'EdDSA', encryption: 'ECDH-ES+A256KW' }),
    });
    const fetched = await reader.fetchProof(first);
    expect(fetched).toEqual(proof);
    expect(
      (await clientVerify(fetched, { rpcUrl: chain.rpcUrl, contract: fetched.contract })).confirmations,
    ).toBeGreaterThanOrEqual(2);
    await expect(
      clientVerify(
        {
          ...fetched,
          leaf: {
            ...fetched.leaf,
            to_address: alice.address === fetched.leaf.to_address ? bob.address : alice.address,
          },
        },
        { rpcUrl: chain.rpcUrl },
      ),
    ).rejects.toBeInstanceOf(ProofError);

    await expectAnchoredOnce(ids);
  }, 180_000);

  it('keeps accepting while the chain is frozen, then anchors every message exactly once', async () => {
    // 1,000 messages through the HTTP API, 20 at a time, from senders spread over 10 peers.
    const senders = Array.from({ length: 10 }, () => TestPeer.create());
    for (const peer of senders)
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
    chain.pause();
    const ids: string[] = [];
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 1000; i += 20) {
        const answers = await Promise.all(
          Array.from({ length: 20 }, async (_, j) => {
            const message = await (senders[(i + j) % senders.length] as TestPeer).message(bob.address);
            ids.push(message['message_id'] as string);
            return (await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).status;
          }),
        );
        statuses.push(...answers);
      }
      expect(statuses.filter((s) => s === 202)).toHaveLength(1000);
      await messagesProjected(relay.ctx.pool, ids, 60_000, 'every message projected');
      expect(await anchoredCount(ids)).toBe(0); // nothing recorded while the chain is away
    } finally {
      chain.resume();
    }
    await eventually(
      async () => ((await anchoredCount(ids)) === ids.length ? true : undefined),
      180_000,
      'every message anchored after the chain came back',
    );
    await expectAnchoredOnce(ids);
  }, 420_000);
  it('rebuilds the same anchoring columns and tables from the log', async () => {
    const snapshot = async () => ({
      messages: (
        await relay.ctx.pool.query(
          'SELECT id, blockchain_txid, anchor_batch_id, anchor_leaf_index FROM messages ORDER BY id',
        )
      ).rows,
      anchors: (
        await relay.ctx.pool.query(
          'SELECT batch_id, root, tree_size, chain_id, contract, tx_hash, block_number, block_hash, block_time, leaf_hashes FROM anchors ORDER BY batch_id',
        )
      ).rows,
      places: (
        await relay.ctx.pool.query('SELECT message_id, batch_id, leaf_index FROM message_anchors ORDER BY message_id')
      ).rows,
    });
    const before = await snapshot();
    expect(before.anchors.length).toBeGreaterThan(0);
    expect(before.messages.every((m: { blockchain_txid: string | null }) => m.blockchain_txid !== null)).toBe(true);
    await rebuildReadModel(relay.ctx);
    expect(await snapshot()).toEqual(before);
  }, 180_000);

  it('replaces a transaction that is not mined with one of the same nonce and higher fees, never a second one', async () => {
    await chain.rpc('evm_setAutomine', [false]);
    await chain.rpc('evm_setIntervalMining', [0]);
    let ids: string[] = [];
    try {
      ids = [await send(alice, bob), await send(bob, alice)];
      // Written ahead, sent, and after RELAY_ANCHOR_REPLACE_AFTER_SECONDS sent again.
      const stuck = await eventually(
        async () => {
          const { rows } = await relay.ctx.pool.query<{ batch_id: string; nonce: string; tx_hashes: string[] }>(
            'SELECT batch_id, nonce, tx_hashes FROM anchor_batches WHERE committed_at IS NULL AND cardinality(tx_hashes) >= 2',
          );
          return rows[0];
        },
        60_000,
        'a replaced anchoring transaction',
      );
      const pending = await chain
        .rpc<{ nonce: string; maxFeePerGas: string }[]>('eth_getBlockByNumber', ['pending', true])
        .then(
          (block) => (block as unknown as { transactions: { nonce: string; maxFeePerGas: string }[] }).transactions,
        );
      expect(pending.filter((tx) => Number(tx.nonce) === Number(stuck.nonce))).toHaveLength(1); // the replacement took the first one's place
      await chain.rpc('evm_setAutomine', [true]);
      await chain.rpc('evm_setIntervalMining', [1000]);
      await eventually(
        async () => ((await anchoredCount(ids)) === ids.length ? true : undefined),
        60_000,
        'the replaced batch anchored',
      );
      const event = (await anchorEvents()).find((e) => e.event_id === stuck.batch_id);
      expect(stuck.tx_hashes).toContain(event?.tx_hash);
      const mined = await Promise.all(
        stuck.tx_hashes.map((hash) => chain.rpc<unknown>('eth_getTransactionReceipt', [hash])),
      );
      expect(mined.filter((receipt) => receipt !== null)).toHaveLength(1);
    } finally {
      await chain.rpc('evm_setAutomine', [true]);
      await chain.rpc('evm_setIntervalMining', [1000]);
    }
    await expectAnchoredOnce(ids);
  }, 180_000);
  it('records nothing for a block that a reorganisation removes before its confirmations, and anchors again', async () => {
    await chain.rpc('evm_setIntervalMining', [0]);
    let ids: string[] = [];
    try {
      // Automine on, interval off: the transaction is mined at once, and no block follows it.
      const snapshot = await chain.rpc<string>('evm_snapshot');
      ids = [await send(alice, bob)];
      const first = await eventually(
        async () => {
          const { rows } = await relay.ctx.pool.query<{ batch_id: string; tx_hashes: string[] }>(
            'SELECT batch_id, tx_hashes FROM anchor_batches WHERE committed_at IS NULL AND cardinality(tx_hashes) >= 1',
          );
          const row = rows[0];
          if (!row) return undefined;
          const receipt = await chain.rpc<{ blockHash: string } | null>('eth_getTransactionReceipt', [
            row.tx_hashes[0],
          ]);
          return receipt ? { ...row, blockHash: receipt.blockHash } : undefined;
        },
        60_000,
        'the anchoring transaction mined, one confirmation short',
      );
      // The block is dropped; the chain goes on without it.
      expect(await chain.rpc<boolean>('evm_revert', [snapshot])).toBe(true);
      expect(await chain.rpc('eth_getTransactionReceipt', [first.tx_hashes[0]])).toBeNull();
      await chain.rpc('evm_setIntervalMining', [1000]);
      await eventually(
        async () => ((await anchoredCount(ids)) === ids.length ? true : undefined),
        90_000,
        'the batch anchored again',
      );
      const event = (await anchorEvents()).find((e) => e.event_id === first.batch_id);
      expect(event).toBeDefined();
      expect(event?.block_hash).not.toBe(first.blockHash);
      const block = await chain.rpc<{ hash: string }>('eth_getBlockByNumber', [
        `0x${(event?.block_number ?? 0).toString(16)}`,
        false,
      ]);
      expect(block.hash).toBe(event?.block_hash); // recorded on the chain as it now is
    } finally {
      await chain.rpc('evm_setIntervalMining', [1000]);
    }
    await expectAnchoredOnce(ids);
  }, 180_000);
});
