import { fileURLToPath } from 'node:url';

/** The project root: this file runs as dist-bench/bench/paths.js. */
export const PROJECT_ROOT_DIR = fileURLToPath(new URL('../../', import.meta.url));
