import { UsageError } from '../../../src/errors/usage-error.js';
import { parseCommandLine } from '../../../src/cli/args.js';

const options = {
  name: { type: 'string' },
  address: { type: 'string' },
  quiet: { type: 'boolean' },
  tokens: { type: 'boolean' },
} as const;

describe('parseCommandLine', () => {
  it('takes a value that begins with "-" for an option that wants one', () => {
    expect(parseCommandLine(['--address', '-x1'], options).values.address).toBe('-x1');
  });

  it('refuses a missing value instead of taking the next option as the value', () => {
    expect(() => parseCommandLine(['--name', '--quiet'], options)).toThrow(UsageError);
    expect(() => parseCommandLine(['--name', '--no-tokens'], options, { negatable: true })).toThrow(UsageError);
  });

  it('refuses an unknown option', () => {
    expect(() => parseCommandLine(['--nope'], options)).toThrow(/unknown option '--nope'/);
  });
});
