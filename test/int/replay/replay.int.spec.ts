import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { loadEventSchemas } from '../../../src/events/schemas.js';
import { EVENT_TYPES } from '../../../src/events/types.js';
import { csv, csvColumns, fieldsOf, jsonLines, TextSink } from '../../../src/replay/formats.js';
import { replay } from '../../../src/replay/replay-reader.js';
import type { ReplayFilter } from '../../../src/replay/filters.js';
import type { StartAt, StopAt } from '../../../src/replay/offsets.js';
import { eventually } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../../helpers/relay.js';
import { readTopic, type LoggedEvent } from '../../helpers/topic-reader.js';
import { collect, jsonLinesOf, RELAY_CLI, runCli, startCli } from './cli.js';

const exec = promisify(execFile);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A known set of events, made through the API in three phases with a time window around the
// middle one; replays by window and by address must return exactly the expected events, decoded.
describe('relay replay', () => {
  let relay: RunningRelay;
  const [alice, bob, carol, dave, erin] = [
    TestPeer.create(),
    TestPeer.create('ES256'),
    TestPeer.create(),
    TestPeer.create(),
    TestPeer.create(),
  ] as const;
  let windowStart = 0;
  let windowEnd = 0;
  const ids = { a: [] as string[], b: [] as string[], c: [] as string[] };
  let acked = '';
  let logged: LoggedEvent[] = [];
  let dir: string;

  const send = async (from: TestPeer, to: TestPeer, count: number): Promise<string[]> => {
    const sent: string[] = [];
    for (let i = 0; i < count; i++) {
      const message = await from.message(to.address);
      const answer = await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message);
      expect(answer.status).toBe(202);
      sent.push(message['message_id'] as string);
    }
    return sent;
  };
  const register = async (peer: TestPeer) => {
    expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-replay-'));
    relay = await startRelay('replay');
    // Phase A: before the window.
    for (const peer of [alice, bob, carol, dave]) await register(peer);
    ids.a.push(...(await send(alice, bob, 3)), ...(await send(carol, dave, 2)));
    acked = ids.a[0] as string;
    await eventually(
      async () => {
        const { rows } = await relay.ctx.pool.query('SELECT 1 FROM messages WHERE id = $1', [acked]);
        return rows.length > 0 ? true : undefined;
      },
      15_000,
      'the first message projected',
    );
    await pause(20);
    windowStart = Date.now();
    await pause(5);
    // Phase B: inside the window.
    ids.b.push(...(await send(alice, carol, 2)), ...(await send(dave, bob, 2)));
    expect(
      (await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', { address: bob.address, message_ids: [acked] })).body,
    ).toMatchObject({ acknowledged: 1 });
    await register(erin);
    await pause(5);
    windowEnd = Date.now();
    await pause(20);
    // Phase C: after the window.
    ids.c.push(...(await send(bob, alice, 2)), ...(await send(carol, dave, 1)));
    logged = [
      ...(await readTopic(relay.ctx, relay.ctx.topics.mailbox)),
      ...(await readTopic(relay.ctx, relay.ctx.topics.peers)),
    ];
    expect(logged).toHaveLength(4 + 5 + 4 + 1 + 1 + 3); // registrations, A, B sends, ack, erin, C
  }, 120_000);

  afterAll(async () => {
    await relay?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs replay() in this process into a string. */
  const replayHere = async (
    filter: ReplayFilter,
    start: StartAt = { kind: 'beginning' },
    stop: StopAt = { kind: 'now' },
  ) => {
    let text = '';
    const sink = new TextSink(
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          text += chunk.toString();
          callback();
        },
      }),
    );
    const { ctx } = relay;
    const summary = await replay(ctx.kafka, ctx.codec, {
      topics: [ctx.topics.mailbox, ctx.topics.peers],
      start,
      stop,
      filter,
      formatter: jsonLines(),
      sink,
      groupPrefix: ctx.config.kafka.groupPrefix,
    });
    return { rows: jsonLinesOf(text), summary };
  };

  /** What identifies an event in these tests: its type and its message id or peer address. */
  const identities = (rows: readonly Record<string, unknown>[]) =>
    rows.map((r) => `${String(r['type'])}:${String(r['message_id'] ?? r['address'])}`).sort();
  const expected = (...entries: [string, string[]][]) =>
    entries.flatMap(([type, keys]) => keys.map((k) => `${type}:${k}`)).sort();

  /** Every row is the logged event at its topic, partition and offset, with its fields decoded. */
  const expectDecodedAsLogged = (rows: readonly Record<string, unknown>[]) => {
    for (const row of rows) {
      const original = logged.find(
        (e) =>
          String(row['offset']) === e.offset &&
          row['partition'] === e.partition &&
          (row['topic'] as string).endsWith(e.event.type.startsWith('Peer') ? 'peers.v1' : 'mailbox.v1'),
      );
      expect(original).toBeDefined();
      expect(row['key']).toBe(original?.key);
      expect(row['type']).toBe(original?.event.type);
      expect(row).toMatchObject({ ...original?.event.data });
      expect(row['occurred_at_iso']).toBe(new Date(original?.event.data.occurred_at ?? 0).toISOString());
    }
  };

  it('returns exactly the events of a time window, decoded', async () => {
    const { rows } = await replayHere(
      { since: windowStart, until: windowEnd },
      { kind: 'time', at: windowStart },
      { kind: 'time', at: windowEnd },
    );
    expect(identities(rows)).toEqual(
      expected(['MessageSent', ids.b], ['MessageDelivered', [acked]], ['PeerRegistered', [erin.address]]),
    );
    expectDecodedAsLogged(rows);
  }, 60_000);

  it('returns exactly the events that name an address, in one window or in all time', async () => {
    const all = await replayHere({ addresses: new Set([bob.address]) });
    const toBob = ids.a.slice(0, 3);
    const fromDave = ids.b.slice(2);
    expect(identities(all.rows)).toEqual(
      expected(
        ['PeerRegistered', [bob.address]],
        ['MessageSent', [...toBob, ...fromDave, ...ids.c.slice(0, 2)]],
        ['MessageDelivered', [acked]],
      ),
    );
    expectDecodedAsLogged(all.rows);
    expect(all.summary.read).toBe(logged.length);

    const windowed = await replayHere(
      { addresses: new Set([bob.address]), since: windowStart, until: windowEnd },
      { kind: 'time', at: windowStart },
    );
    expect(identities(windowed.rows)).toEqual(expected(['MessageSent', fromDave], ['MessageDelivered', [acked]]));
    // Starting by time skips the records before the window instead of reading and dropping them.
    expect(windowed.summary.read).toBeLessThan(logged.length);
  }, 60_000);

  it('starts at given offsets and filters by type', async () => {
    const { rows } = await replayHere({ types: new Set(['MessageDelivered', 'PeerRegistered'] as const) });
    expect(identities(rows)).toEqual(
      expected(
        ['MessageDelivered', [acked]],
        ['PeerRegistered', [alice, bob, carol, dave, erin].map((p) => p.address)],
      ),
    );
    const fromOne = await replayHere({}, { kind: 'offset', all: 1n });
    const partitionsWithRecords = new Set(
      logged.map((e) => `${e.event.type.startsWith('Peer') ? 'p' : 'm'}${e.partition}`),
    );
    expect(fromOne.rows).toHaveLength(logged.length - partitionsWithRecords.size);
    expect(fromOne.rows.every((r) => Number(r['offset']) >= 1)).toBe(true);
  }, 60_000);

  it('does the same through `relay replay`, quietly when piped, as JSON Lines or CSV', async () => {
    const { env } = relay.ctx;
    const window = ['--since', new Date(windowStart).toISOString(), '--until', new Date(windowEnd).toISOString()];
    const piped = await runCli(['replay', ...window], env);
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
    const rows = jsonLinesOf(piped.stdout);
    expect(identities(rows)).toEqual(
      expected(['MessageSent', ids.b], ['MessageDelivered', [acked]], ['PeerRegistered', [erin.address]]),
    );
    expectDecodedAsLogged(rows);

    const out = join(dir, 'bob.csv');
    const byAddress = await runCli(['replay', '--address', bob.address, '--type', 'MessageSent', '--out', out], env);
    expect(byAddress).toMatchObject({ code: 0, stderr: '', stdout: '' });
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\r\n');
    const header = lines[0]?.split(',') ?? [];
    expect(header).toEqual(csvColumns(fieldsOf(await loadEventSchemas()), ['MessageSent']));
    const messageIds = lines.slice(1).map((line) => line.split(',')[header.indexOf('message_id')]);
    expect(messageIds.sort()).toEqual([...ids.a.slice(0, 3), ...ids.b.slice(2), ...ids.c.slice(0, 2)].sort());
    // The same rows as the in-process CSV formatter writes for them.
    const format = csv(header);
    for (const line of lines.slice(1)) {
      const offset = Number(line.split(',')[header.indexOf('offset')]);
      const partition = Number(line.split(',')[header.indexOf('partition')]);
      const original = logged.find(
        (e) => e.event.type === 'MessageSent' && Number(e.offset) === offset && e.partition === partition,
      );
      expect(original).toBeDefined();
      if (original)
        expect(`${line}\r\n`).toBe(
          format.line({
            topic: relay.ctx.topics.mailbox,
            partition,
            offset: original.offset,
            key: original.key,
            event: original.event,
          }),
        );
    }
    expect(EVENT_TYPES).toContain('MessageSent');
  }, 120_000);

  it('shows a progress bar with events/s and an ETA on a terminal', async () => {
    const out = join(dir, 'all.jsonl');
    // `script` runs the command on a pseudo-terminal, as a person at a terminal would.
    const command = [process.execPath, RELAY_CLI, 'replay', '--out', out].map((a) => `'${a}'`).join(' ');
    const { stdout: screen } = await exec('script', ['-qec', command, '/dev/null'], {
      env: { ...relay.ctx.env },
      cwd: PROJECT_ROOT,
      timeout: 60_000,
    });
    expect(screen).toMatch(/replay \[#+\] 100%/);
    expect(screen).toContain(`${logged.length}/${logged.length}`);
    expect(screen).toMatch(/ev\/s {2}ETA \d+:\d\d/);
    expect(jsonLinesOf(await readFile(out, 'utf8'))).toHaveLength(logged.length);
  }, 90_000);

  it('follows new events until interrupted', async () => {
    const child = startCli(['replay', '--follow', '--since', 'now', '--address', erin.address], relay.ctx.env);
    const done = collect(child);
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    await pause(3000); // the replay's consumer joins its group
    const [later] = await send(carol, erin, 1);
    await eventually(async () => (seen.includes(later as string) ? true : undefined), 30_000, 'the followed event');
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(0);
    expect(identities(jsonLinesOf(result.stdout))).toEqual(expected(['MessageSent', [later as string]]));
  }, 90_000);
});
