import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VARIABLES } from '../../../src/config/config.js';
import { ERROR_CODES } from '../../../src/errors/codes.js';

// The reference pages are written by hand; these checks keep the parts that must follow the code
// (error codes, variables, event schemas, routes) from drifting away from it.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The `##`/`###` sections of a markdown page, by heading text, each with its body up to the next heading of that level or higher. */
function sections(markdown: string, level: 2 | 3): Map<string, string> {
  const result = new Map<string, string>();
  const stop = new RegExp(`^#{1,${level}} `);
  const open = new RegExp(`^#{${level}} (.+?)\\s*$`);
  let current: string | undefined;
  let body: string[] = [];
  for (const line of markdown.split('\n')) {
    const heading = open.exec(line);
    if (heading || stop.test(line)) {
      if (current !== undefined) result.set(current, body.join('\n'));
      current = heading?.[1];
      body = [];
    } else if (current !== undefined) {
      body.push(line);
    }
  }
  if (current !== undefined) result.set(current, body.join('\n'));
  return result;
}

describe('docs/reference/errors.md', () => {
  const page = read('docs/reference/errors.md');
  const all = sections(page, 2);
  // A code section is headed by a bare identifier; prose sections ("The problem document") are not.
  const codeSections = new Map([...all].filter(([heading]) => /^[a-z][a-z0-9_]*$/.test(heading)));
  const codes = Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[];

  it('has a section for every error code', () => {
    const missing = codes.filter((code) => !codeSections.has(code));
    expect(missing).toEqual([]);
  });

  it('has no section for a code that does not exist', () => {
    const unknown = [...codeSections.keys()].filter((heading) => !(heading in ERROR_CODES));
    expect(unknown).toEqual([]);
  });

  it('has each code exactly once', () => {
    const headings = page.split('\n').filter((line) => /^## [a-z][a-z0-9_]*\s*$/.test(line));
    expect(headings.length).toBe(new Set(headings).size);
  });

  it.each(codes)('states the status, title and retry behaviour of %s', (code) => {
    const body = codeSections.get(code) ?? '';
    const spec = ERROR_CODES[code];
    const status = /HTTP status:\**\s*(\d{3})\b/.exec(body);
    expect(status?.[1]).toBe(String(spec.status));
    expect(body).toContain(spec.title);
    const retriable = /Retriable:\**\s*(yes|no)\b/i.exec(body);
    expect(retriable?.[1]?.toLowerCase()).toBe(spec.retriable ? 'yes' : 'no');
  });

  it('describes the problem document type as urn:relay:error:<code>', () => {
    expect(page).toContain('urn:relay:error:<code>');
  });
});

describe('docs/reference/configuration.md', () => {
  const page = read('docs/reference/configuration.md');
  const names = Object.keys(VARIABLES);

  /** The lines of the first markdown table on the page. */
  const firstTable = (): string[] => {
    const lines = page.split('\n');
    const start = lines.findIndex((line) => line.trimStart().startsWith('|'));
    if (start < 0) return [];
    const end = lines.findIndex((line, i) => i > start && !line.trimStart().startsWith('|'));
    return lines.slice(start, end < 0 ? undefined : end);
  };

  it('mentions every variable the relay reads, in backticks', () => {
    const missing = names.filter((name) => !page.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('lists every variable in the first table, and no variable the relay does not read', () => {
    const table = firstTable().join('\n');
    expect(table).not.toBe('');
    const mentioned = new Set(table.match(/\bRELAY_[A-Z0-9_]+\b/g) ?? []);
    expect([...mentioned].filter((name) => !(name in VARIABLES))).toEqual([]);
    expect(names.filter((name) => !mentioned.has(name))).toEqual([]);
  });

  it('gives each variable its default in the first table', () => {
    const rows = firstTable();
    for (const [name, spec] of Object.entries(VARIABLES)) {
      const row = rows.find((line) => line.includes(`\`${name}\``));
      expect(row).toBeDefined();
      if (spec.default !== '') expect(row).toContain(`\`${spec.default}\``);
    }
  });
});

describe('docs/reference/events.md', () => {
  const page = read('docs/reference/events.md');
  const bySchema = sections(page, 3);
  const schemaFiles = readdirSync(join(ROOT, 'schemas')).filter((file) => file.endsWith('.avsc'));

  interface AvroRecord {
    name: string;
    namespace?: string;
    fields: { name: string }[];
  }
  const schemas = schemaFiles.map((file) => JSON.parse(read(join('schemas', file))) as AvroRecord);

  it('finds the schemas', () => {
    expect(schemas.length).toBeGreaterThan(0);
  });

  it.each(schemaFiles)('documents %s: its record name and every field', (file) => {
    const schema = JSON.parse(read(join('schemas', file))) as AvroRecord;
    expect(page).toContain(schema.name);
    const section = bySchema.get(schema.name);
    expect(section).toBeDefined();
    if (schema.namespace) expect(section).toContain(`\`${schema.namespace}.${schema.name}\``);
    const missing = schema.fields.map((field) => field.name).filter((field) => !section?.includes(`\`${field}\``));
    expect(missing).toEqual([]);
  });

  it('names every dead-letter header the consumer writes', () => {
    const source = read('src/kafka/consumer-service.ts');
    const headers = [...new Set(source.match(/relay\.dlq\.[a-z]+/g) ?? [])];
    expect(headers.length).toBeGreaterThan(0);
    expect(headers.filter((header) => !page.includes(`\`${header}\``))).toEqual([]);
  });
});

// docs/reference/api.md is checked against the served OpenAPI document in test/unit/api/openapi.unit.spec.ts.
