import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project root: the nearest folder above this file that holds package.json. That is the same
 * answer from src/config/, dist/config/ and dist-bench/src/config/ (the benchmark's build).
 */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return `${dir}/`;
}

export const PROJECT_ROOT = projectRoot();

export const SCHEMAS_DIR = join(PROJECT_ROOT, 'schemas');
export const MIGRATIONS_DIR = join(PROJECT_ROOT, 'migrations');
