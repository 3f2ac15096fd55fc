import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config/config.js';

export type Logger = PinoLogger;
export type Fields = Readonly<Record<string, unknown>>;

/**
 * Paths whose values never reach the log: credentials a request or the configuration carries.
 * A pattern covers the top level and one object down (`*.x`), which is where call sites put them.
 */
export const REDACTED_PATHS: readonly string[] = [
  ...[
    'apiKey',
    'api_key',
    'token',
    'accessToken',
    'access_token',
    'authorization',
    'signature',
    'password',
    'secret',
    'privateKey',
    'private_key',
  ].flatMap((key) => [key, `*.${key}`]),
  ...['headers', 'req.headers', 'request.headers'].flatMap((at) => [
    `${at}.authorization`,
    `${at}["x-api-key"]`,
    `${at}.cookie`,
  ]),
  // viem's request errors carry the chain RPC URL, which hosted providers key with a secret.
  'err.url',
  // Connection URLs may hold a password (postgres://user:secret@host); the config's secrets by their place in it.
  ...[
    'postgres.url',
    'postgres.readUrl',
    'redis.url',
    'kafkaSecurity.sasl.password',
    'anchor.privateKey',
    'anchor.rpcUrl',
  ].flatMap((path) => [path, `config.${path}`]),
];

// One asynchronous stderr stream for every logger of the process, so lines keep their order and
// one flush empties them all. Created on first use: tests that log to their own stream never open it.
let stderr: ReturnType<typeof pino.destination> | undefined;
const stderrDestination = () => (stderr ??= pino.destination({ dest: 2, sync: false }));

/**
 * JSON lines, by default on stderr through a buffer written asynchronously; pino flushes it when
 * the process exits, and `flushLogs` empties it before anything else is written to stderr.
 * Errors go under `err` ({ err }), serialised with their type, message, stack and cause.
 */
export function createLogger(
  level: LogLevel,
  bindings: Fields = {},
  destination: DestinationStream = stderrDestination(),
): Logger {
  return pino(
    {
      level,
      base: bindings,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS] },
    },
    destination,
  );
}

/** Writes out, synchronously, whatever the stderr log still holds: before a plain line or an exit. */
export function flushLogs(): void {
  stderr?.flushSync();
}
