import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SCHEMAS_DIR } from '../config/paths.js';
import { EVENT_TYPES, type EventType } from './types.js';

/** The Avro schema text of each event type, read from schemas/<Type>.avsc. */
export async function loadEventSchemas(dir: string = SCHEMAS_DIR): Promise<ReadonlyMap<EventType, string>> {
  const entries = await Promise.all(
    EVENT_TYPES.map(async (type) => [type, await readFile(join(dir, `${type}.avsc`), 'utf8')] as const),
  );
  return new Map(entries);
}
