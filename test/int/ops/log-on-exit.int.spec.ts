import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../../src/config/paths.js';

const exec = promisify(execFile);

// The log is written asynchronously: lines wait in a buffer while stderr is busy. A process that
// exits at once (the shutdown grace period running out, a fatal error) must still write them all.
describe('the stderr log of a process that exits at once', () => {
  it('holds every line, the last one included', async () => {
    const lines = 20_000;
    const script = `
      import { createLogger } from ${JSON.stringify(`${PROJECT_ROOT}dist/observability/logger.js`)};
      const log = createLogger('info', { role: 'exit-test' });
      for (let i = 0; i < ${lines}; i++) log.info({ i, padding: 'x'.repeat(200) }, 'filler');
      log.error({ err: new Error('the last words') }, 'exiting');
      process.exit(1);
    `;
    const result = await exec(process.execPath, ['--input-type=module', '-e', script], {
      maxBuffer: 64 * 1024 * 1024,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
    );
    expect(result.code).toBe(1);
    const written = result.stderr.trimEnd().split('\n');
    expect(written).toHaveLength(lines + 1);
    expect(JSON.parse(written[written.length - 1] as string)).toMatchObject({
      level: 'error',
      message: 'exiting',
      role: 'exit-test',
      err: { message: 'the last words' },
    });
  });
});
