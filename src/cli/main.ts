#!/usr/bin/env node
import { ConfigError, loadConfig } from '../config/config.js';
import { describe } from '../errors/problem.js';
import { openResources } from '../lifecycle/resources.js';
import { runServices } from '../lifecycle/service.js';
import { prepareDependencies } from '../lifecycle/setup.js';
import { createLogger } from '../observability/logger.js';
import { isRole, ROLES, servicesFor } from './roles.js';

const USAGE = `usage: relay <command>

Roles (run until SIGINT or SIGTERM, then stop cleanly):
  all         every role in one process (what \`npm start\` runs)
  ingress     HTTP API and WebSocket stream
  projector   Kafka events into the Postgres read model
  presence    peer and presence events into Redis
  router      pushes new messages to the node that holds the recipient's socket

Operations:
  setup       create topics, register event schemas, migrate the database; then exit
  help        this text

Configuration comes from RELAY_* environment variables: docs/reference/configuration.md.`;

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] ?? 'help';
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command !== 'setup' && !isRole(command)) {
    process.stderr.write(`relay: unknown command "${command}"; roles are ${ROLES.join(', ')}\n\n${USAGE}\n`);
    return 2;
  }

  const config = loadConfig();
  const log = createLogger(config.logLevel, { node: config.nodeId, role: command });
  const resources = openResources(config, log);
  try {
    await prepareDependencies(resources);
    if (command === 'setup') return 0;

    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (stop.signal.aborted) return;
      log.info('stopping', { signal });
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    log.info('starting', { role: command });
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
    if (error instanceof ConfigError) {
      process.stderr.write(`relay: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`relay: ${describe(error)}\n`);
    process.exitCode = 1;
  },
);
