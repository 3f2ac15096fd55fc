import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import kafkajs from 'kafkajs';
import pg from 'pg';
import { loadConfig } from '../../../src/config/config.js';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { AppError } from '../../../src/errors/app-error.js';
import { EventCodec } from '../../../src/events/codec.js';
import { loadEventSchemas } from '../../../src/events/schemas.js';
import type { EventType, RelayEvent } from '../../../src/events/types.js';
import { ConsumerService } from '../../../src/kafka/consumer-service.js';
import { runServices } from '../../../src/lifecycle/service.js';
import { migrate } from '../../../src/postgres/migrate.js';
import { createPool } from '../../../src/postgres/pool.js';
import { postgresProjector } from '../../../src/projections/postgres-projector.js';
import { csv, csvColumns, fieldsOf, jsonLines, TextSink, type Formatter } from '../../../src/replay/formats.js';
import { replay } from '../../../src/replay/replay-reader.js';
import { eventually, openTestContext, type TestContext } from '../../helpers/context.js';
import { stack } from '../../helpers/processes.js';
import { recordCount } from '../../helpers/topic-reader.js';
import { jsonLinesOf } from './cli.js';

const exec = promisify(execFile);

/** MessageSent with one field added: with a default (a compatible change) or without (incompatible). */
function withExtraField(
  schemas: ReadonlyMap<EventType, string>,
  field: Record<string, unknown>,
): Map<EventType, string> {
  const schema = JSON.parse(schemas.get('MessageSent') as string) as { fields: unknown[] };
  return new Map([...schemas, ['MessageSent', JSON.stringify({ ...schema, fields: [...schema.fields, field] })]]);
}

// Subjects are global record names (RecordNameStrategy), so evolved and incompatible schemas are
// registered only in a registry of this file's own (own port, own database), never the shared one.
describe('schema evolution', () => {
  const port = String(17100 + (randomBytes(2).readUInt16BE(0) % 800));
  const database = `relay_registry_evolution_${randomBytes(4).toString('hex')}`;
  const registryEnv = { RELAY_REGISTRY_PORT: port, RELAY_REGISTRY_DB: database };
  const registryUrl = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  let ctx: TestContext;
  let base: ReadonlyMap<EventType, string>;
  let dir: string;
  const recipient = 'R'.repeat(43);
  const sender = 'S'.repeat(43);

  const sent = (i: number, extra: Record<string, unknown> = {}): RelayEvent => ({
    type: 'MessageSent',
    data: {
      event_id: randomUUID(),
      occurred_at: Date.now(),
      message_id: randomUUID(),
      from_address: sender,
      to_address: recipient,
      message_type: 'text',
      encrypted_content: `c${i}`,
      content_sha256: 'h',
      signature: 's',
      node_id: 'n',
      ...extra,
    },
  });

  const produce = async (codec: EventCodec, events: readonly RelayEvent[]) => {
    const producer = ctx.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    await producer.send({
      topic: ctx.topics.mailbox,
      acks: -1,
      messages: events.map((e) => ({ key: recipient, value: codec.encode(e) })),
    });
    await producer.disconnect();
  };

  const replayWith = async (codec: EventCodec, formatter: Formatter = jsonLines()): Promise<string> => {
    let text = '';
    const sink = new TextSink(
      new Writable({ write: (chunk: Buffer, _e, callback) => ((text += chunk.toString()), callback()) }),
    );
    await replay(ctx.kafka, codec, {
      topics: [ctx.topics.mailbox],
      start: { kind: 'beginning' },
      stop: { kind: 'now' },
      filter: {},
      formatter,
      sink,
      groupPrefix: ctx.config.kafka.groupPrefix,
    });
    return text;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-evolution-'));
    await stack(['registry-up'], registryEnv);
    ctx = await openTestContext('evolution', { RELAY_SCHEMA_REGISTRY_URL: registryUrl });
    base = await loadEventSchemas();
  }, 300_000);

  afterAll(async () => {
    await ctx?.cleanup();
    await stack(['registry-down'], registryEnv).catch(() => undefined);
    const admin = new pg.Client({ connectionString: loadConfig().postgres.url.replace(/\/[^/]*$/, '/postgres') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}"`);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('decodes old and new events in replay and projection, with the new code and with the old', async () => {
    const oldEvents = [sent(1), sent(2), sent(3)];
    await produce(ctx.codec, oldEvents);
    const evolved = withExtraField(base, { name: 'priority', type: 'string', default: 'normal' });
    const newCodec = EventCodec.create(registryUrl);
    const ids = await newCodec.registerAll(evolved);
    expect(ids.get('MessageSent')).not.toBe(ctx.codec.schemaIdOf('MessageSent'));
    const newEvents = [sent(4, { priority: 'high' }), sent(5, { priority: 'high' })];
    await produce(newCodec, newEvents);

    // New code reads old events in the new shape, with the default.
    const byNew = jsonLinesOf(await replayWith(newCodec));
    expect(byNew.map((r) => [r['encrypted_content'], r['priority']])).toEqual([
      ['c1', 'normal'],
      ['c2', 'normal'],
      ['c3', 'normal'],
      ['c4', 'high'],
      ['c5', 'high'],
    ]);
    const csvText = await replayWith(newCodec, csv(csvColumns(fieldsOf(evolved), ['MessageSent'])));
    expect(csvText.split('\r\n')[0]?.split(',').pop()).toBe('priority');
    expect(csvText.split('\r\n')[1]?.split(',').pop()).toBe('normal');

    // Old code reads new events in the old shape: the added field is dropped, the rest is intact.
    const oldCodec = EventCodec.create(registryUrl);
    await oldCodec.registerAll(base);
    const byOld = jsonLinesOf(await replayWith(oldCodec));
    expect(byOld.map((r) => r['encrypted_content'])).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    expect(byOld.every((r) => !('priority' in r))).toBe(true);
    const withoutPriority = [...oldEvents, ...newEvents].map(({ data }) =>
      Object.fromEntries(Object.entries(data).filter(([field]) => field !== 'priority')),
    );
    for (const [i, row] of byOld.entries()) expect(row).toMatchObject(withoutPriority[i] ?? {});

    // Both projectors apply all five, none goes to the dead-letter topic.
    for (const [name, codec] of [
      ['new', newCodec],
      ['old', oldCodec],
    ] as const) {
      const schema = `${ctx.config.postgres.schema}_${name}`.slice(0, 63);
      await migrate(ctx.pool, schema, ctx.log);
      const pool = createPool(ctx.config, { options: `-c search_path=${schema}`, max: 2 });
      const consumer = new ConsumerService(
        ctx.kafka,
        codec,
        {
          name: `projector-${name}`,
          groupId: `${ctx.config.kafka.groupPrefix}.projector-${name}`,
          topics: [ctx.topics.mailbox],
          dlqTopic: ctx.topics.dlq,
        },
        postgresProjector(pool),
        ctx.log,
      );
      const stop = new AbortController();
      const running = runServices([consumer], stop.signal, ctx.log);
      try {
        const rows = await eventually(
          async () => {
            const { rows: found } = await pool.query<{ encrypted_content: string }>(
              'SELECT encrypted_content FROM messages ORDER BY encrypted_content',
            );
            return found.length === 5 ? found : undefined;
          },
          60_000,
          `the ${name} projector to apply every event`,
        );
        expect(rows.map((r) => r.encrypted_content)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
      } finally {
        stop.abort();
        await running;
        await pool.end();
        await ctx.pool.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    }
    expect(await recordCount(ctx, ctx.topics.dlq)).toBe(0);
  }, 180_000);

  it('refuses an incompatible change, and `relay setup` names the schema and the reason', async () => {
    const incompatible = withExtraField(base, { name: 'region', type: 'string' });
    const refusal = await EventCodec.create(registryUrl)
      .registerAll(incompatible)
      .catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(AppError);
    expect(refusal).toMatchObject({ code: 'schema_rejected' });
    expect((refusal as Error).message).toMatch(/relay\.events\.MessageSent/);
    expect((refusal as Error).message).toMatch(/region/); // the registry's reason names the field

    // The same through `relay setup` (what `npm start` runs), from an install whose schemas/ holds the change.
    const install = join(dir, 'install');
    await cp(join(PROJECT_ROOT, 'dist'), join(install, 'dist'), { recursive: true });
    await cp(join(PROJECT_ROOT, 'migrations'), join(install, 'migrations'), { recursive: true });
    await cp(join(PROJECT_ROOT, 'schemas'), join(install, 'schemas'), { recursive: true });
    await cp(join(PROJECT_ROOT, 'package.json'), join(install, 'package.json'));
    await symlink(join(PROJECT_ROOT, 'node_modules'), join(install, 'node_modules'));
    await writeFile(join(install, 'schemas', 'MessageSent.avsc'), incompatible.get('MessageSent') as string);
    const setup = await exec(process.execPath, [join(install, 'dist', 'cli', 'main.js'), 'setup'], {
      env: { ...ctx.env },
      timeout: 60_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
    );
    expect(setup.code).toBe(1);
    const lastLine = setup.stderr.trimEnd().split('\n').pop() ?? '';
    expect(lastLine).toMatch(
      /^relay: Schema relay\.events\.MessageSent \(schemas\/MessageSent\.avsc\): it is not BACKWARD-compatible .*region/,
    );
    expect(setup.stderr).not.toMatch(/\n\s+at /); // a sentence, not a stack trace
  }, 120_000);
});
