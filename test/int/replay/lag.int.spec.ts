import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { consumerService } from '../../../src/app/roles.js';
import type { RelayEvent } from '../../../src/events/types.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { consumerLag, renderLagTable, type GroupLag } from '../../../src/replay/lag.js';
import { eventually, openTestContext, type TestContext } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { recordCount } from '../../helpers/topic-reader.js';
import { runCli } from './cli.js';

// `relay lag` against consumers that really consumed: first all caught up, then stopped while
// more is produced, so the lag is exactly what was produced after they stopped.
describe('relay lag', () => {
  let ctx: TestContext;
  const peers = Array.from({ length: 6 }, () => TestPeer.create().address);
  let stopConsumers: () => Promise<void>;

  const produce = async (events: readonly RelayEvent[]) => {
    const producer = ctx.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    for (const event of events) {
      const topic = event.type.startsWith('Peer') ? ctx.topics.peers : ctx.topics.mailbox;
      const key =
        (event.data as { to_address?: string; address?: string }).to_address ??
        (event.data as { address: string }).address;
      await producer.send({ topic, acks: -1, messages: [{ key, value: ctx.codec.encode(event) }] });
    }
    await producer.disconnect();
  };
  const messages = (count: number): RelayEvent[] =>
    Array.from({ length: count }, (_, i) => ({
      type: 'MessageSent',
      data: {
        event_id: randomUUID(),
        occurred_at: Date.now(),
        message_id: randomUUID(),
        from_address: peers[0] as string,
        to_address: peers[i % peers.length] as string,
        message_type: 'text',
        encrypted_content: `c${i}`,
        content_sha256: 'h',
        signature: 's',
        node_id: 'n',
      },
    }));
  const presence = (): RelayEvent[] =>
    peers.map((address) => ({
      type: 'PeerPresenceChanged',
      data: { event_id: randomUUID(), occurred_at: Date.now(), address, online: true, node_id: 'n' },
    }));

  const lag = () => consumerLag(ctx.kafka, ctx.config.kafka.groupPrefix, [ctx.topics.mailbox, ctx.topics.peers]);
  const group = (groups: readonly GroupLag[], role: string) =>
    groups.find((g) => g.group === `${ctx.config.kafka.groupPrefix}.${role}`);
  const sumEnds = (g: GroupLag | undefined, topic: string) =>
    (g?.partitions ?? []).filter((p) => p.topic === topic).reduce((sum, p) => sum + p.end, 0);

  beforeAll(async () => {
    ctx = await openTestContext('lag');
    const consumers = (['projector', 'presence', 'router'] as const).map((role) => consumerService(ctx, role));
    const controller = new AbortController();
    const running = runServices(consumers, controller.signal, ctx.log);
    running.catch(() => undefined);
    await Promise.all(consumers.map((c) => c.joined()));
    stopConsumers = async () => {
      controller.abort();
      await running.catch(() => undefined);
    };
  }, 60_000);

  afterAll(async () => {
    await stopConsumers?.();
    await ctx?.cleanup();
  });

  it('shows every group caught up with what was produced', async () => {
    await produce([...messages(40), ...presence()]);
    const groups = await eventually(
      async () => {
        const found = await lag();
        const caughtUp = ['projector', 'presence', 'router'].every((role) => {
          const g = group(found, role);
          return (
            g !== undefined &&
            g.partitions.some((p) => p.committed !== null) &&
            g.partitions.every((p) => p.lag === 0 || (p.committed === null && p.end === 0))
          );
        });
        return caughtUp ? found : undefined;
      },
      60_000,
      'every group to commit up to the end',
    );

    expect(groups.map((g) => g.group)).toEqual(
      ['projector', 'presence', 'router'].map((r) => `${ctx.config.kafka.groupPrefix}.${r}`).sort(),
    );
    const projector = group(groups, 'projector');
    expect(projector).toMatchObject({ state: 'Stable', members: 1, lag: 0 });
    expect(sumEnds(projector, ctx.topics.mailbox)).toBe(40);
    expect(sumEnds(projector, ctx.topics.peers)).toBe(peers.length);
    expect(sumEnds(group(groups, 'router'), ctx.topics.mailbox)).toBe(40);
    expect(group(groups, 'router')?.partitions.every((p) => p.topic === ctx.topics.mailbox)).toBe(true);
    expect(group(groups, 'presence')?.partitions.every((p) => p.topic === ctx.topics.peers)).toBe(true);
    for (const p of projector?.partitions ?? []) if (p.end > 0) expect(p.committed).toBe(p.end);
    expect(await recordCount(ctx, ctx.topics.mailbox)).toBe(40);
  }, 90_000);

  it('shows what was produced after the consumers stopped as their lag, in `relay lag` too', async () => {
    await stopConsumers();
    await produce(messages(10));
    const groups = await lag();
    expect(group(groups, 'projector')).toMatchObject({ state: 'Empty', members: 0, lag: 10 });
    expect(group(groups, 'router')?.lag).toBe(10);
    expect(group(groups, 'presence')?.lag).toBe(0);

    const json = await runCli(['lag', '--json'], ctx.env);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(json.stdout) as { groups: GroupLag[] }).groups).toEqual(groups);

    const table = await runCli(['lag', '--group', 'projector'], ctx.env);
    expect(table.code).toBe(0);
    expect(table.stdout).toBe(renderLagTable([group(groups, 'projector') as GroupLag]));
    expect(table.stdout.split('\n')[0]).toMatch(/^GROUP\s+TOPIC\s+PARTITION\s+COMMITTED\s+END\s+LAG$/);
    expect(table.stdout).toMatch(
      new RegExp(
        `${ctx.config.kafka.groupPrefix.replace(/\./g, '\\.')}\\.projector\\s+\\(total: Empty, 0 members\\)\\s+10\\n$`,
      ),
    );
  }, 90_000);
});
