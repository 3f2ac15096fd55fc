import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The project root: this file sits two levels down, in src/config/ and in dist/config/ alike. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const SCHEMAS_DIR = join(PROJECT_ROOT, 'schemas');
export const MIGRATIONS_DIR = join(PROJECT_ROOT, 'migrations');
