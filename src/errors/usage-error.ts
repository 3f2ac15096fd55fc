/** A command line the CLI cannot act on: printed as is, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
