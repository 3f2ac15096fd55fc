import { LOG_LEVELS, type LogLevel } from '../config/config.js';

export type Fields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

/** JSON lines on stderr, one object per entry, least severe level filtered out. */
export function createLogger(level: LogLevel, base: Fields = {}, write = (line: string) => process.stderr.write(line)): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const entry =
    (at: LogLevel) =>
    (message: string, fields: Fields = {}): void => {
      if (LOG_LEVELS.indexOf(at) < threshold) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level: at, message, ...base, ...fields })}\n`);
    };
  return {
    debug: entry('debug'),
    info: entry('info'),
    warn: entry('warn'),
    error: entry('error'),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}
