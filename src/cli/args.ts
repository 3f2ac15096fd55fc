import { parseArgs } from 'node:util';
import { UsageError } from '../errors/usage-error.js';

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

/**
 * `--name value` as `--name=value` for options that take a value, so a value may begin with "-":
 * a base64url address does one time in 64, and parseArgs refuses `--address -x…` as ambiguous.
 */
function joinValues(args: readonly string[], options: Options): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return [...joined, ...args.slice(i)];
    const takesValue = arg.startsWith('--') && !arg.includes('=') && options[arg.slice(2)]?.type === 'string';
    const next = args[i + 1];
    // A known option where the value should be is a missing value, for parseArgs to refuse.
    const nextName = next?.startsWith('--') ? (next.slice(2).split('=')[0] as string) : undefined;
    const nextIsOption =
      nextName !== undefined && (nextName in options || (nextName.startsWith('no-') && nextName.slice(3) in options));
    if (takesValue && next !== undefined && !nextIsOption) joined.push(`${arg}=${args[++i] as string}`);
    else joined.push(arg);
  }
  return joined;
}

/**
 * The one way the CLI reads its arguments: Node's parseArgs, strict, with its errors turned into
 * one-line UsageErrors (exit status 2). `negatable` accepts `--no-<flag>` for boolean options, the
 * last of `--flag` and `--no-flag` winning.
 */
export function parseCommandLine<T extends Options>(
  args: readonly string[],
  options: T,
  { positionals = false, negatable = false } = {},
) {
  try {
    return parseArgs({
      args: joinValues(args, options),
      options,
      allowPositionals: positionals,
      allowNegative: negatable,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message.split(/\. (?=[A-Z])/)[0]?.replace(/\.$/, '') ?? String(error);
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1));
  }
}
