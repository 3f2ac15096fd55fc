import { createLogger, type Logger } from '../../src/observability/logger.js';
import type { LogLevel } from '../../src/config/config.js';

/** One parsed log line: `level`, `message`, `time`, the bindings and the call's fields. */
export type LogEntry = Readonly<Record<string, unknown>> & { readonly level: string; readonly message: string };

/**
 * The relay's real logger writing to memory instead of stderr: redaction, serialisers and field
 * names are the ones production uses. pino writes to a plain `{ write }` destination synchronously.
 */
export function recordingLogger(level: LogLevel = 'debug'): {
  readonly log: Logger;
  readonly entries: LogEntry[];
  readonly lines: string[];
} {
  const lines: string[] = [];
  const entries: LogEntry[] = [];
  const log = createLogger(
    level,
    {},
    {
      write(line: string) {
        lines.push(line);
        entries.push(JSON.parse(line) as LogEntry);
      },
    },
  );
  return { log, entries, lines };
}
