import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.js';
import { PROJECT_ROOT } from '../src/config/paths.js';
import type { RelayEvent } from '../src/events/types.js';
import type { ConsumedRecord } from '../src/kafka/consumer-service.js';
import { createLogger } from '../src/observability/logger.js';
import { createPool } from '../src/postgres/pool.js';
import { migrate } from '../src/postgres/migrate.js';
import { postgresProjector } from '../src/projections/postgres-projector.js';
import { runEnv } from './run-env.js';

/**
 * What projecting MessageSent events costs, per message, by batch size: the projector's own CPU
 * (this process, running the live projector's handler) and PostgreSQL's (every `postgres`
 * process on the machine, so run it on a machine at rest). The records are made here, already
 * decoded: Kafka and Avro are not in these figures. A fresh schema per run, dropped at the end.
 * Prints a Markdown table and saves it (and JSON) under bench/results/projector-<stamp>.*.
 *
 *   npm run bench:projector                          # batches of 1, 5, 43 and 200 messages
 *   npm run bench:projector -- --sizes 43 --messages 100000
 */

const USAGE = `usage: npm run bench:projector -- [--sizes a,b,...] [--messages n] [--label text]

  --sizes <list>    messages per batch, one measurement each (default 1,5,43,200)
  --messages <n>    messages per measurement, after 2,000 of warm-up (default 30000)
  --label <text>    a name for this run in the report (default: none)`;

const say = (line: string) => process.stderr.write(`[projector] ${line}\n`);

interface Row {
  readonly batchSize: number;
  readonly messages: number;
  readonly seconds: number;
  readonly projectorUsPerMessage: number;
  readonly postgresUsPerMessage: number;
}

/** CPU milliseconds used so far by every process named `postgres` (the server and its backends). */
function postgresCpuMs(): number {
  const tick = 10; // ms per clock tick (USER_HZ 100 on Linux)
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      total += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      // the process ended while being read
    }
  }
  return total;
}

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      sizes: { type: 'string', default: '1,5,43,200' },
      messages: { type: 'string', default: '30000' },
      label: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const sizes = values.sizes.split(',').map((raw) => {
    const size = Number(raw);
    if (!Number.isInteger(size) || size < 1 || size > 10_000)
      throw new Error(`--sizes takes whole numbers from 1 to 10000, not "${raw}"`);
    return size;
  });
  const perSize = Number(values.messages);
  if (!Number.isInteger(perSize) || perSize < 100) throw new Error(`--messages must be at least 100`);

  const id = randomUUID().slice(0, 8);
  const config = loadConfig(runEnv('bench', id, 0, {}));
  const log = createLogger('warn');
  const pool = createPool(config, { max: 2 });
  await migrate(pool, config.postgres.schema, log);
  const rows: Row[] = [];
  try {
    const content = 'c'.repeat(512);
    let offset = 0;
    const batch = (size: number): ConsumedRecord[] =>
      Array.from({ length: size }, () => {
        const event: RelayEvent = {
          type: 'MessageSent',
          data: {
            event_id: randomUUID(),
            occurred_at: Date.now(),
            message_id: randomUUID(),
            from_address: 'f'.repeat(43),
            to_address: `r${offset % 1000}`.padEnd(43, 'r'),
            message_type: 'text',
            encrypted_content: content,
            content_sha256: 'h'.repeat(43),
            signature: 's'.repeat(300),
            node_id: 'bench',
            expires_at: Date.now() + 86_400_000,
          },
        };
        return { topic: 'mailbox', partition: 0, offset: String(offset++), key: event.data.to_address, event };
      });
    const project = postgresProjector(pool);
    for (const size of sizes) {
      const batches = Math.ceil(perSize / size);
      for (let done = 0; done < 2000; done += size) await project(batch(size), 'mailbox', 0);
      const postgresBefore = postgresCpuMs();
      const cpuBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      for (let i = 0; i < batches; i++) await project(batch(size), 'mailbox', 0);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const cpu = process.cpuUsage(cpuBefore);
      const messages = batches * size;
      const row: Row = {
        batchSize: size,
        messages,
        seconds,
        projectorUsPerMessage: (cpu.user + cpu.system) / messages,
        postgresUsPerMessage: ((postgresCpuMs() - postgresBefore) * 1000) / messages,
      };
      rows.push(row);
      say(
        `${size}/batch: projector ${row.projectorUsPerMessage.toFixed(1)} µs, PostgreSQL ${row.postgresUsPerMessage.toFixed(1)} µs per message`,
      );
    }
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${config.postgres.schema}" CASCADE`);
    await pool.end();
  }

  const stamp = new Date()
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace('T', '-')
    .replace(/:/g, '');
  const lines = [
    `# Projector cost per message, ${new Date().toISOString().slice(0, 19).replace('T', ' ')} UTC${values.label ? ` (${values.label})` : ''}`,
    '',
    "MessageSent events, already decoded, applied by the live projector's handler to a fresh schema; CPU per message of this process and of every `postgres` process. Kafka and Avro decoding are not included.",
    '',
    '| messages per batch | messages | seconds | projector µs/msg | PostgreSQL µs/msg | together |',
    '|--:|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${r.batchSize} | ${r.messages} | ${r.seconds.toFixed(1)} | ${r.projectorUsPerMessage.toFixed(1)} | ${r.postgresUsPerMessage.toFixed(1)} | ${(r.projectorUsPerMessage + r.postgresUsPerMessage).toFixed(1)} |`,
    ),
    '',
  ];
  const report = lines.join('\n');
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `projector-${stamp}`);
  writeFileSync(`${base}.md`, report);
  writeFileSync(`${base}.json`, `${JSON.stringify({ label: values.label, rows }, null, 2)}\n`);
  process.stdout.write(report);
  say(`report: ${base}.md`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
