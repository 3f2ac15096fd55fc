import { SignatureVerifier } from '../crypto/signatures.js';
import { ApiKeyStore, SCOPES, type Scope } from '../ingress/api-keys.js';
import { TokenService } from '../ingress/tokens.js';
import type { Resources } from '../app/resources.js';
import { UsageError } from '../errors/usage-error.js';
import { parseCommandLine } from './args.js';

export const APIKEY_USAGE = `usage: relay apikey create --name NAME [--scopes a,b] [--quiet]
       relay apikey list
       relay apikey revoke ID
scopes: ${SCOPES.join(', ')} (default: all)`;

/** `relay apikey create|list|revoke`: keys are printed once at creation and stored hashed. */
export async function runApiKeyCommand(
  args: readonly string[],
  resources: Resources,
  out: (line: string) => void,
): Promise<number> {
  const store = new ApiKeyStore(resources.pool);
  const [action, ...rest] = args;
  const { values, positionals } = parseCommandLine(
    rest,
    { name: { type: 'string' }, scopes: { type: 'string' }, quiet: { type: 'boolean' } },
    { positionals: true },
  );
  switch (action) {
    case 'create': {
      if (!values.name) throw new UsageError('apikey create needs --name');
      const scopes = values.scopes ? values.scopes.split(',').map((s) => s.trim()) : [...SCOPES];
      const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0)
        throw new UsageError(`unknown scope ${unknown.join(', ')}; scopes are ${SCOPES.join(', ')}`);
      const { key, info } = await store.create(values.name, scopes as Scope[]);
      if (values.quiet) out(key);
      else
        out(
          `created API key ${info.id} "${info.name}" (${info.scopes.join(', ')})\n${key}\nStore it now: the relay keeps only its hash.`,
        );
      return 0;
    }
    case 'list':
      for (const key of await store.list()) {
        out(
          `${key.id}  ${key.revoked_at ? `revoked ${key.revoked_at}` : 'active'}  ${key.name}  [${key.scopes.join(', ')}]  created ${key.created_at}`,
        );
      }
      return 0;
    case 'revoke': {
      const id = positionals[0];
      if (!id) throw new UsageError('apikey revoke needs the key id (see relay apikey list)');
      if (!(await store.revoke(id))) {
        out(`no API key ${id}`);
        return 1;
      }
      out(`revoked ${id}`);
      return 0;
    }
    default:
      throw new UsageError(APIKEY_USAGE);
  }
}

/** `relay token-key rotate`: a new key signs tokens from now; the old one verifies until its tokens expire. */
export async function runTokenKeyCommand(
  args: readonly string[],
  resources: Resources,
  out: (line: string) => void,
): Promise<number> {
  const { positionals } = parseCommandLine(args, {}, { positionals: true });
  if (positionals[0] !== 'rotate' || positionals.length > 1) throw new UsageError('usage: relay token-key rotate');
  const { config, pool, redis } = resources;
  const tokens = new TokenService({
    pool,
    redis,
    redisPrefix: config.redis.keyPrefix,
    verifier: new SignatureVerifier(),
    ttlSeconds: config.auth.tokenTtlSeconds,
  });
  out(`new token signing key ${await tokens.rotate()}; older keys verify until their tokens expire`);
  return 0;
}

/** A mistake in the command line: printed as is, exit status 2. */
export { UsageError };
