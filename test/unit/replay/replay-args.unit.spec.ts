import { Writable } from 'node:stream';
import {
  parseLagArgs,
  parseRebuildArgs,
  parseReplayArgs,
  runAnalystCommand,
  type CommandIo,
} from '../../../src/cli/replay-commands.js';
import type { Resources } from '../../../src/app/resources.js';
import { UsageError } from '../../../src/replay/filters.js';

const now = Date.parse('2025-03-01T12:00:00Z');
const address = 'x'.repeat(43);

describe('relay replay arguments', () => {
  it('reads everything from the beginning to the current end by default', () => {
    expect(parseReplayArgs([], now)).toEqual({
      topics: ['mailbox', 'peers'],
      start: { kind: 'beginning' },
      stop: { kind: 'now' },
      filter: {},
      format: 'jsonl',
      out: undefined,
      progress: undefined,
    });
  });

  it('turns a time window into start and stop offsets by time and a filter on occurred_at', () => {
    const args = parseReplayArgs(['--since', '2h', '--until', '2025-03-01T11:30:00Z'], now);
    expect(args).toMatchObject({
      start: { kind: 'time', at: now - 7_200_000 },
      stop: { kind: 'time', at: now - 1_800_000 },
      filter: { since: now - 7_200_000, until: now - 1_800_000 },
    });
  });

  it('reads offsets for every partition or for listed ones', () => {
    expect(parseReplayArgs(['--from-offset', '120'], now)).toMatchObject({ start: { kind: 'offset', all: 120n } });
    const listed = parseReplayArgs(['--from-offset', '0:10,3:40'], now);
    expect(listed !== 'help' && listed.start).toEqual({
      kind: 'offset',
      partitions: new Map([
        [0, 10n],
        [3, 40n],
      ]),
    });
  });

  it('narrows the topics to those of the requested types, and collects repeated filters', () => {
    const args = parseReplayArgs(
      ['--type', 'PeerRegistered', '--address', address, '--address', 'y'.repeat(43), '-f'],
      now,
    );
    expect(args).toMatchObject({ topics: ['peers'], stop: { kind: 'follow' } });
    expect(args !== 'help' && args.filter.addresses).toEqual(new Set([address, 'y'.repeat(43)]));
    expect(args !== 'help' && args.filter.types).toEqual(new Set(['PeerRegistered']));
  });

  it('takes an address that begins with "-" (one base64url address in 64 does) as the value of --address', () => {
    const dashed = `-${'z'.repeat(42)}`;
    const args = parseReplayArgs(['--address', dashed, '--since', '1h'], now);
    expect(args !== 'help' && args.filter.addresses).toEqual(new Set([dashed]));
  });

  it('writes CSV when asked, or when the output file ends in .csv', () => {
    expect(parseReplayArgs(['--format', 'csv'], now)).toMatchObject({ format: 'csv' });
    expect(parseReplayArgs(['-o', 'out.CSV'], now)).toMatchObject({ format: 'csv', out: 'out.CSV' });
    expect(parseReplayArgs(['--out', 'out.csv', '--format', 'jsonl'], now)).toMatchObject({ format: 'jsonl' });
  });

  it.each([
    [['--since', '1h', '--from-offset', '5'], 'choose one start: --since, --from-offset or --from-beginning'],
    [['--until', '1h', '--follow'], '--until and --follow exclude each other'],
    [['--since', '1h', '--until', '2h'], '--since must be before --until'],
    [
      ['--topic', 'peers', '--type', 'MessageSent'],
      '--type MessageSent is on the mailbox topic, which --topic leaves out',
    ],
    [['--topic', 'anchors'], '--topic must be mailbox or peers (relay.mailbox.v1, relay.peers.v1), not "anchors"'],
    [['--format', 'xml'], '--format must be jsonl or csv, not "xml"'],
    [['--from-offset', 'x'], '--from-offset must be an offset (1200) or partition:offset pairs (0:1200,3:40), not "x"'],
    [['--progress', '--no-progress'], '--progress and --no-progress exclude each other'],
    [['--bogus'], "unknown option '--bogus'"],
    [['--since'], "option '--since <value>' argument missing"],
    [['extra'], "unexpected argument 'extra'"],
  ])('refuses %p: %s', (args, message) => {
    let error: unknown;
    try {
      parseReplayArgs(args, now);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(message);
  });
});

describe('relay lag and relay rebuild arguments', () => {
  it('reads them', () => {
    expect(parseLagArgs(['--json', '--group', 'projector'])).toEqual({ json: true, groups: ['projector'] });
    expect(parseRebuildArgs(['read_model', '--keep-retired'])).toEqual({
      keepRetired: true,
      allowTruncatedLog: false,
      progress: undefined,
    });
    expect(parseRebuildArgs(['--help'])).toBe('help');
  });

  it('refuses to rebuild anything but the read model', () => {
    expect(() => parseRebuildArgs([])).toThrow('name what to rebuild: relay rebuild read_model');
    expect(() => parseRebuildArgs(['peers'])).toThrow(
      'only the read model can be rebuilt (relay rebuild read_model), not "peers"',
    );
  });
});

describe('runAnalystCommand', () => {
  const capture = () => {
    const text = { stdout: '', stderr: '' };
    const stream = (name: 'stdout' | 'stderr') =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          text[name] += chunk.toString();
          callback();
        },
      });
    const io: CommandIo = { stdout: stream('stdout'), stderr: stream('stderr') };
    return { io, text };
  };
  // Usage and argument errors are answered before any connection is used.
  const resources = { config: { logLevel: 'warn' } } as unknown as Resources;

  it('exits 2 with a one-line reason for a bad argument', async () => {
    const { io, text } = capture();
    expect(await runAnalystCommand('replay', ['--type', 'Nope'], resources, io)).toBe(2);
    expect(text.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(text.stderr).toMatch(/^relay replay: --type must be one of .* \(see relay replay --help\)\n$/);
    expect(text.stdout).toBe('');
  });

  it.each(['replay', 'lag', 'rebuild'] as const)('prints the usage of %s for --help and exits 0', async (command) => {
    const { io, text } = capture();
    expect(await runAnalystCommand(command, ['--help'], resources, io)).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^usage: relay ${command}`));
  });
});
