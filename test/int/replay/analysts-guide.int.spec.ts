import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { messagesProjected } from '../../helpers/context.js';
import { TestPeer } from '../../helpers/peer.js';
import { call, startRelay, type RunningRelay } from '../../helpers/relay.js';
import { jsonLinesOf } from './cli.js';

const exec = promisify(execFile);
const GUIDE = 'docs/guides/analysts.md';

/** The shell examples of the guide marked `<!-- tested -->`, in order, exactly as written. */
function testedExamples(markdown: string): string[] {
  return [...markdown.matchAll(/<!-- tested -->\n```sh\n([\s\S]*?)\n```/g)].map((match) => match[1] as string);
}

// The analysts' guide shows commands; this runs them, exactly as written and in order, against a
// relay with a topic prefix of its own, and checks that each printed what the guide says it does.
describe(`the tested examples of ${GUIDE}`, () => {
  let relay: RunningRelay;
  let dir: string;
  const [alice, bob] = [TestPeer.create(), TestPeer.create()];
  const outputs: string[] = [];

  beforeAll(async () => {
    relay = await startRelay('guide');
    for (const peer of [alice, bob])
      expect((await call(relay.baseUrl, 'POST', '/api/v1/peer/register', await peer.registration())).status).toBe(202);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const message = await alice.message(bob.address);
      expect((await call(relay.baseUrl, 'POST', '/api/v1/message/relay', message)).status).toBe(202);
      ids.push(message['message_id'] as string);
    }
    await messagesProjected(relay.ctx.pool, ids);
    expect(
      (await call(relay.baseUrl, 'POST', '/api/v1/messages/ack', { address: bob.address, message_ids: [ids[0]] })).body,
    ).toMatchObject({ acknowledged: 1 });

    // The commands run from "the project root": a directory that links to this checkout's parts,
    // so the files the examples write (messages.csv, record.bin) land in a place of their own.
    dir = await mkdtemp(join(tmpdir(), 'relay-guide-'));
    for (const part of ['dist', 'infra', 'node_modules', 'schemas', 'migrations', 'package.json'])
      await symlink(join(PROJECT_ROOT, part), join(dir, part));

    const examples = testedExamples(await readFile(join(PROJECT_ROOT, GUIDE), 'utf8'));
    const script = [
      'set -euo pipefail',
      ...examples.flatMap((example, i) => [`printf '\\n@@example ${i}\\n'`, example]),
    ].join('\n');
    const { stdout } = await exec('bash', ['-c', script], {
      cwd: dir,
      env: { ...relay.ctx.env },
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    outputs.push(...stdout.split(/\n@@example \d+\n/).slice(1));
    expect(outputs).toHaveLength(examples.length);
  }, 300_000);

  afterAll(async () => {
    await relay?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const outputOf = (pattern: RegExp): string => {
    const found = outputs.find((output) => pattern.test(output));
    expect(found).toBeDefined();
    return found ?? '';
  };

  it('has examples for relay replay, relay lag, the console consumer and the registry', async () => {
    const examples = testedExamples(await readFile(join(PROJECT_ROOT, GUIDE), 'utf8'));
    for (const command of [
      'dist/cli/main.js replay --since',
      'dist/cli/main.js lag',
      'ConsoleConsumer',
      '/apis/ccompat/v7/schemas/ids/',
      '--format',
      '--out',
    ]) {
      expect(
        examples.some((example) => example.includes(command) || (command === '--format' && example.includes('.csv'))),
      ).toBe(true);
    }
  });

  it('replays the events of one address as JSON Lines', () => {
    const rows = jsonLinesOf(outputOf(/^\{"topic":/));
    expect(rows.length).toBeGreaterThan(0);
    const peer = [alice.address, bob.address].find((a) =>
      rows.every((r) => [r['key'], r['to_address'], r['from_address'], r['address']].includes(a)),
    );
    expect(peer).toBeDefined();
    expect(rows[0]).toMatchObject({
      topic: expect.stringContaining('relay.') as unknown,
      type: expect.any(String) as unknown,
      occurred_at_iso: expect.stringMatching(/Z$/) as unknown,
    });
  });

  it('writes CSV with a header', () => {
    const [header, first] = outputOf(/^topic,partition,offset,key,type,/)
      .trimEnd()
      .split(/\r?\n/);
    expect(header?.split(',')).toEqual(expect.arrayContaining(['message_id', 'via', 'occurred_at_iso']));
    expect(first).toMatch(/relay\.mailbox\.v1,\d+,\d+,/);
  });

  it('lists records with the console consumer, and decodes one through the registry', () => {
    const listed = outputOf(/^Partition:\d+\tOffset:\d+\t/);
    expect(listed.trimEnd().split('\n')).toHaveLength(3);
    expect(listed).toContain(bob.address);
    const header = outputOf(/schema id: \d+/);
    expect(header).toContain('magic byte: 0');
    const id = Number(/schema id: (\d+)/.exec(header)?.[1]);
    expect(id).toBe(relay.ctx.codec.schemaIdOf('MessageSent'));
    expect(JSON.parse(header.slice(header.indexOf('{'))) as { schema: string }).toMatchObject({
      schema: expect.stringContaining('"MessageSent"') as unknown,
    });
    const decoded = outputOf(/^MessageSent \{/);
    expect(decoded).toContain(`to_address: '${bob.address}'`);
    expect(decoded).toContain(`from_address: '${alice.address}'`);
  });

  it('shows the consumer groups and their lag', () => {
    const table = outputOf(/^GROUP\s+TOPIC\s+PARTITION\s+COMMITTED\s+END\s+LAG/);
    for (const role of ['projector', 'presence', 'router'])
      expect(table).toContain(`${relay.ctx.config.kafka.groupPrefix}.${role}`);
  });
});
