import type { Writable } from 'node:stream';
import type { EventType, RelayEvent } from '../events/types.js';

/** One decoded record of the log, with its place in it. */
export interface ReplayedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly event: RelayEvent;
}

export const FORMATS = ['jsonl', 'csv'] as const;
export type OutputFormat = (typeof FORMATS)[number];

/** The columns every output line starts with, before the event's own fields. */
export const ENVELOPE_COLUMNS = ['topic', 'partition', 'offset', 'key', 'type'] as const;

/** Avro values as JSON can carry them: bytes as base64, longs beyond 2^53 as strings. */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/**
 * The flat object one output line holds: topic, partition, offset, key, type, then the event's
 * fields in schema order, with `occurred_at_iso` (occurred_at as ISO 8601 UTC) after occurred_at.
 */
export function toRow(record: ReplayedRecord): Record<string, unknown> {
  const row: Record<string, unknown> = {
    topic: record.topic,
    partition: record.partition,
    offset: Number(record.offset),
    key: record.key,
    type: record.event.type,
  };
  for (const [field, value] of Object.entries(record.event.data)) {
    if (field in row) continue; // the envelope wins; no event field is named like it today
    row[field] = plain(value);
    if (field === 'occurred_at' && typeof value === 'number') row['occurred_at_iso'] = new Date(value).toISOString();
  }
  return row;
}

/** The field names of each event type, in schema order, from the Avro schema texts. */
export function fieldsOf(schemas: ReadonlyMap<EventType, string>): Map<EventType, string[]> {
  return new Map(
    [...schemas].map(([type, text]) => [
      type,
      ((JSON.parse(text) as { fields?: { name: string }[] }).fields ?? []).map((f) => f.name),
    ]),
  );
}

/** CSV columns for a replay of these event types: the envelope, then every field any of them has. */
export function csvColumns(fields: ReadonlyMap<EventType, readonly string[]>, types: readonly EventType[]): string[] {
  const columns: string[] = [...ENVELOPE_COLUMNS];
  for (const type of types) {
    for (const field of fields.get(type) ?? []) {
      if (!columns.includes(field)) columns.push(field);
      if (field === 'occurred_at' && !columns.includes('occurred_at_iso')) columns.push('occurred_at_iso');
    }
  }
  return columns;
}

/** One RFC 4180 cell: quoted when it holds a comma, quote or line break; objects as JSON. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects are JSON above; the rest are primitives, which String() renders
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Turns records into the text of output lines. */
export interface Formatter {
  /** Text to write before the first record (the CSV header), or ''. */
  readonly header: string;
  line(record: ReplayedRecord): string;
}

export function jsonLines(): Formatter {
  return { header: '', line: (record) => `${JSON.stringify(toRow(record))}\n` };
}

/** CSV with a fixed header; a field that is not among the columns is left out. */
export function csv(columns: readonly string[]): Formatter {
  return {
    header: `${columns.map(csvCell).join(',')}\r\n`,
    line: (record) => {
      const row = toRow(record);
      return `${columns.map((column) => csvCell(row[column])).join(',')}\r\n`;
    },
  };
}

/**
 * Writes text to a stream, waiting for it to drain when its buffer is full, so a fast log and a
 * slow disk or pipe never pile up output in memory.
 */
export class TextSink {
  private failure: Error | undefined;

  constructor(private readonly stream: Writable) {
    stream.on('error', (error: Error) => {
      this.failure ??= error;
    });
  }

  /** The write error (for example EPIPE when the reader of a pipe went away), if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (text === '' || this.stream.write(text)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('error', failed);
        resolve();
      };
      const failed = (error: Error) => {
        this.stream.off('drain', done);
        reject(error);
      };
      this.stream.on('drain', done);
      this.stream.once('error', failed);
    });
  }

  /** Ends the stream (a file) and waits until everything is written. */
  async end(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}
