import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { anchorServices } from '../src/app/roles.js';
import { PROJECT_ROOT } from '../src/config/paths.js';
import type { AnchorService } from '../src/anchoring/anchor-service.js';
import type { RelayEvent } from '../src/events/types.js';
import { runServices, sleep } from '../src/lifecycle/service.js';
import { startLocalChain } from '../test/helpers/chain.js';
import { openTestContext } from '../test/helpers/context.js';

/**
 * Anchoring under load: MessageSent records are written to a fresh mailbox topic at a steady rate
 * while one anchor role anchors them on a local Hardhat chain of its own (a block per transaction
 * and one a second, RELAY_ANCHOR_CONFIRMATIONS 2). Reports messages per anchor, gas per anchor,
 * and the anchoring lag (from a message's acceptance to its AnchorCommitted) per batch, and
 * whether the role kept up: its lag at the end is about its lag at the start. Prints a Markdown
 * report and saves it under bench/results/anchoring-<stamp>.md. It reports and never asserts.
 *
 *   npm run bench:anchoring                              # 10,000 messages/s for 30 s
 *   npm run bench:anchoring -- --rate 3700 --seconds 30  # the batch path's rate on the development machine
 *   npm run bench:anchoring -- --rate 2000 --seconds 20
 */

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    'max-messages': { type: 'string', default: '10000' },
    interval: { type: 'string', default: '10' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const say = (line: string) => process.stderr.write(`[anchoring] ${line}\n`);

const chain = await startLocalChain();
const ctx = await openTestContext('bench_anchoring', {
  ...chain.env,
  RELAY_ANCHOR_MAX_MESSAGES: String(values['max-messages']),
  RELAY_ANCHOR_INTERVAL_SECONDS: String(values.interval),
  RELAY_ANCHOR_CONFIRMATIONS: '2',
  RELAY_LOG_LEVEL: 'warn',
});
const [service] = anchorServices(ctx, true) as [AnchorService];
const stop = new AbortController();
const running = runServices([service], stop.signal, ctx.log);
await service.joined();

const producer = ctx.kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
});
await producer.connect();
const recipients = Array.from({ length: 1000 }, (_, i) => createHash('sha256').update(`r${i}`).digest('base64url'));
const sender = createHash('sha256').update('sender').digest('base64url');
const total = rate * seconds;
say(`writing ${total.toLocaleString('en-US')} MessageSent at ${rate.toLocaleString('en-US')}/s while anchoring`);
const started = Date.now();
let written = 0;
for (let tick = 0; written < total; tick++) {
  const due = Math.min(total, Math.round(((tick + 1) * rate) / 10));
  const events: RelayEvent[] = [];
  for (; written < due; written++) {
    const content = `c${written}`;
    events.push({
      type: 'MessageSent',
      data: {
        event_id: randomUUID(),
        occurred_at: Date.now(),
        message_id: randomUUID(),
        from_address: sender,
        to_address: recipients[written % recipients.length] as string,
        message_type: 'text',
        encrypted_content: content,
        content_sha256: createHash('sha256').update(content).digest('base64url'),
        signature: 's',
        node_id: 'bench',
      },
    });
  }
  await producer.send({
    topic: ctx.topics.mailbox,
    acks: -1,
    messages: events.map((e) => ({ key: (e.data as { to_address: string }).to_address, value: ctx.codec.encode(e) })),
  });
  const wait = started + (tick + 1) * 100 - Date.now();
  if (wait > 0) await sleep(wait);
}
const writeSeconds = (Date.now() - started) / 1000;
await producer.disconnect();
const anchoredCount = () => service.anchored.reduce((sum, b) => sum + b.leaves, 0);
while (anchoredCount() < total && Date.now() - started < (seconds + 300) * 1000) await sleep(200);
const drainSeconds = (Date.now() - started) / 1000;
stop.abort();
await running.catch(() => undefined);
await ctx.cleanup();
await chain.stop();

const batches = service.anchored;
const leaves = batches.map((b) => b.leaves);
const lags = batches.map((b) => b.lagMs);
const gas = batches.map((b) => Number(b.gasUsed));
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const half = Math.floor(batches.length / 2);
// Keeping up: later batches wait no longer than earlier ones, give or take one interval.
const keptUp =
  anchoredCount() === total && mean(lags.slice(half)) <= mean(lags.slice(0, half)) + Number(values.interval) * 1000;
const report = `# Anchoring bench

${new Date().toISOString()}, ${rate.toLocaleString('en-US')} MessageSent/s for ${seconds} s (${total.toLocaleString('en-US')} messages, written in ${writeSeconds.toFixed(1)} s),
RELAY_ANCHOR_MAX_MESSAGES ${values['max-messages']}, RELAY_ANCHOR_INTERVAL_SECONDS ${values.interval}, RELAY_ANCHOR_CONFIRMATIONS 2,
local Hardhat chain (a block per transaction and one a second).

| measure | value |
|---|---|
| messages anchored | ${anchoredCount().toLocaleString('en-US')} of ${total.toLocaleString('en-US')} (${(anchoredCount() / drainSeconds).toFixed(0)}/s over ${drainSeconds.toFixed(1)} s) |
| anchors (transactions) | ${batches.length} |
| messages per anchor | mean ${mean(leaves).toFixed(0)}, min ${Math.min(...leaves)}, max ${Math.max(...leaves)} |
| gas per anchor | mean ${mean(gas).toFixed(0)}, min ${Math.min(...gas)}, max ${Math.max(...gas)} |
| gas per message | ${(mean(gas) / Math.max(1, mean(leaves))).toFixed(1)} |
| anchoring lag (oldest message of a batch to its AnchorCommitted) | first half of batches mean ${(mean(lags.slice(0, half)) / 1000).toFixed(1)} s, second half ${(mean(lags.slice(half)) / 1000).toFixed(1)} s, max ${(Math.max(...lags) / 1000).toFixed(1)} s |
| kept up | ${keptUp ? 'yes: every message anchored, and the lag of the later batches stayed within one interval of the earlier ones' : 'no: the lag grew by more than an interval, or not every message was anchored'} |
`;
process.stdout.write(report);
const dir = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `anchoring-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}.md`), report);
process.exit(0);
