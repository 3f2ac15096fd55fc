import { PassThrough, Writable } from 'node:stream';
import { EVENT_TYPES } from '../../../src/events/types.js';
import { loadEventSchemas } from '../../../src/events/schemas.js';
import {
  csv,
  csvCell,
  csvColumns,
  fieldsOf,
  jsonLines,
  TextSink,
  toRow,
  type ReplayedRecord,
} from '../../../src/replay/formats.js';

const record: ReplayedRecord = {
  topic: 'relay.mailbox.v1',
  partition: 3,
  offset: '1200',
  key: 'B'.repeat(43),
  event: {
    type: 'MessageDelivered',
    data: {
      event_id: '5d1c3c7e-0000-4000-8000-000000000001',
      occurred_at: Date.parse('2025-01-31T12:00:00.123Z'),
      message_id: 'm-1',
      to_address: 'B'.repeat(43),
      via: 'stream',
    },
  },
};

describe('toRow', () => {
  it('puts the envelope first, then the fields in order, with occurred_at also as ISO time', () => {
    const row = toRow(record);
    expect(Object.keys(row)).toEqual([
      'topic',
      'partition',
      'offset',
      'key',
      'type',
      'event_id',
      'occurred_at',
      'occurred_at_iso',
      'message_id',
      'to_address',
      'via',
    ]);
    expect(row).toMatchObject({
      partition: 3,
      offset: 1200,
      type: 'MessageDelivered',
      occurred_at_iso: '2025-01-31T12:00:00.123Z',
      via: 'stream',
    });
  });

  it('writes bytes as base64', () => {
    const withBytes = {
      ...record,
      event: { ...record.event, data: { ...record.event.data, blob: Buffer.from('hi') } },
    } as unknown as ReplayedRecord;
    expect(toRow(withBytes)['blob']).toBe('aGk=');
  });
});

describe('JSON Lines', () => {
  it('writes one parseable object per line', () => {
    const line = jsonLines().line(record);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual(toRow(record));
  });
});

describe('CSV', () => {
  it('quotes cells as RFC 4180 says', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(42)).toBe('42');
    expect(csvCell(false)).toBe('false');
  });

  it('has a column for every field of the chosen event types, envelope first', async () => {
    const fields = fieldsOf(await loadEventSchemas());
    const columns = csvColumns(fields, ['MessageSent', 'MessageDelivered']);
    expect(columns.slice(0, 8)).toEqual([
      'topic',
      'partition',
      'offset',
      'key',
      'type',
      'event_id',
      'occurred_at',
      'occurred_at_iso',
    ]);
    expect(columns).toEqual(expect.arrayContaining(['from_address', 'to_address', 'encrypted_content', 'via']));
    expect(columns).not.toContain('online');
    expect(new Set(csvColumns(fields, EVENT_TYPES)).size).toBe(csvColumns(fields, EVENT_TYPES).length);
  });

  it('writes a header and rows that line up with it', async () => {
    const columns = csvColumns(fieldsOf(await loadEventSchemas()), ['MessageDelivered', 'MessageSent']);
    const format = csv(columns);
    const header = format.header.trimEnd().split(',');
    const cells = format.line(record).trimEnd().split(',');
    expect(header).toEqual(columns);
    expect(cells).toHaveLength(columns.length);
    expect(cells[header.indexOf('via')]).toBe('stream');
    expect(cells[header.indexOf('from_address')]).toBe('');
  });
});

describe('TextSink', () => {
  it('waits for a slow stream to drain instead of buffering without bound', async () => {
    const chunks: string[] = [];
    let release: () => void = () => undefined;
    const slow = new Writable({
      highWaterMark: 4,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        release = callback;
      },
    });
    const sink = new TextSink(slow);
    let written = false;
    const pending = sink.write('more than four bytes').then(() => {
      written = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toBe(false);
    release();
    await pending;
    expect(written).toBe(true);
    expect(chunks).toEqual(['more than four bytes']);
  });

  it('reports a broken pipe on the next write', async () => {
    const stream = new PassThrough();
    const sink = new TextSink(stream);
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await expect(sink.write('x')).rejects.toThrow('EPIPE');
  });
});
