#!/usr/bin/env node
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config/config.js';
import { PROJECT_ROOT } from '../config/paths.js';
import { AppError } from '../errors/app-error.js';
import { describe } from '../errors/describe.js';
import { openResources, type Resources } from '../app/resources.js';
import { runServices } from '../lifecycle/service.js';
import { prepareDependencies } from '../app/setup.js';
import { createLogger, flushLogs } from '../observability/logger.js';
import { runApiKeyCommand, runTokenKeyCommand, UsageError } from './admin-commands.js';
import { runDemo } from './demo.js';
import { runVerifyProof } from './verify-proof.js';
import { setupAnchoring } from '../app/setup-anchoring.js';
import { ANALYST_USAGE, isAnalystCommand, runAnalystCommand } from './replay-commands.js';
import { makeDevCerts } from './dev-certs.js';
import { parseCommandLine } from './args.js';
import { isRole, ROLES, servicesFor } from '../app/roles.js';

const USAGE = `usage: relay <command>

Roles (run until SIGINT or SIGTERM, then stop in order within RELAY_SHUTDOWN_GRACE_MS):
  all         every role in one process (what \`npm start\` runs)
  ingress     HTTP API and WebSocket stream
  projector   Kafka events into the Postgres read model
  presence    peer and presence events into Redis
  router      pushes new messages to the node that holds the recipient's socket
  anchor      anchors batches of messages on an EVM chain (RELAY_ANCHOR_*; part of all when set)
  expiry      writes MessageExpired for messages past expires_at, and purges settled rows

Operations:
  setup                     create topics, register event schemas, migrate the database
  apikey create|list|revoke manage API keys (relay apikey for details)
  token-key rotate          start signing access tokens with a new key
  dev-certs [--out DIR]     make a local CA and a certificate for localhost (default .relay/certs)
  demo [--url URL] [--api-key KEY] [--ca FILE]
                            two peers exchange encrypted messages through a running relay
  verify-proof --rpc URL FILE|-
                            check a message's anchoring proof against the chain alone
  help                      this text

${ANALYST_USAGE}

Configuration comes from RELAY_* environment variables: docs/reference/configuration.md.`;

const print = (line: string) => process.stdout.write(`${line}\n`);

/** Commands that need the dependencies prepared, then run against them and exit. */
const OPERATIONS: Record<string, (args: readonly string[], resources: Resources) => Promise<number>> = {
  setup: async (_args, resources) => {
    await setupAnchoring(resources, print);
    return 0;
  },
  apikey: (args, resources) => runApiKeyCommand(args, resources, print),
  'token-key': (args, resources) => runTokenKeyCommand(args, resources, print),
};

async function main(argv: readonly string[]): Promise<number> {
  const [command = 'help', ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    print(USAGE);
    return 0;
  }
  if (command === 'dev-certs') {
    const { values } = parseCommandLine(args, { out: { type: 'string' }, force: { type: 'boolean' } });
    const dir = values.out ?? join(PROJECT_ROOT, '.relay', 'certs');
    const certs = await makeDevCerts(dir, values.force ?? false);
    print(
      `${certs.created ? 'made' : 'kept'} development certificates in ${dir}\n  CA:          ${certs.ca}\n  certificate: ${certs.cert}\n  key:         ${certs.key}`,
    );
    return 0;
  }
  if (command === 'demo') return runDemo(args, print);
  if (command === 'verify-proof') return runVerifyProof(args, print);
  const operation = OPERATIONS[command];
  if (!operation && !isRole(command) && !isAnalystCommand(command)) {
    process.stderr.write(`relay: unknown command "${command}"; roles are ${ROLES.join(', ')}\n\n${USAGE}\n`);
    return 2;
  }

  const config = loadConfig();
  const log = createLogger(config.logLevel, { node: config.nodeId, role: command });
  const resources = openResources(config, log);
  try {
    // Analyst commands read what exists: they create no topics and migrate nothing.
    if (isAnalystCommand(command)) return await runAnalystCommand(command, args, resources);
    await prepareDependencies(resources);
    if (operation) return await operation(args, resources);
    if (!isRole(command)) return 2;

    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (stop.signal.aborted) return;
      log.info({ signal, grace_ms: config.shutdownGraceMs }, 'stopping');
      stop.abort();
      // Whatever has not stopped within the grace period is abandoned: a deployment waits no longer.
      setTimeout(() => {
        log.error({ grace_ms: config.shutdownGraceMs }, 'did not stop within the shutdown grace period; exiting');
        flushLogs();
        process.exit(1);
      }, config.shutdownGraceMs).unref();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    log.info({ role: command }, 'starting');
    await runServices(servicesFor(command, resources), stop.signal, log);
    log.info('stopped');
    return 0;
  } finally {
    await resources.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // The JSON lines logged so far come before the one plain line that says why the command failed.
    flushLogs();
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`relay: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (error instanceof AppError) {
      process.stderr.write(`relay: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`relay: ${describe(error)}\n`);
    process.exitCode = 1;
  },
);
