import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { AppError } from '../errors/app-error.js';
import type { ErrorCode } from '../errors/codes.js';
import type { ApiKeyStore } from './api-keys.js';
import type { RateLimiter, Rate } from './rate-limit.js';
import type { StreamGuard } from './stream-hub.js';
import { authorizeAddress, bearerToken, type TokenService } from './tokens.js';

/** Decides whether a request may read or acknowledge the mailbox of `address`; rejects with the reason if not. */
export type MailboxGuard = (req: Request, address: string) => Promise<void>;

export const openMailboxes: MailboxGuard = async () => undefined;

/** Reading or acknowledging a mailbox needs a token issued to that address (RELAY_AUTH=required). */
export const mailboxGuard = (tokens: TokenService, required: boolean): MailboxGuard =>
  required ? (req, address) => authorizeAddress(tokens, bearerToken(req), address) : openMailboxes;

/** A credential that was presented and is wrong; a missing one is not a guess and costs nothing. */
const FAILED_CREDENTIALS: ReadonlySet<ErrorCode> = new Set(['invalid_api_key', 'invalid_token', 'invalid_nonce']);
/** On the token endpoint, a proof that does not verify is a failed authentication too. */
const FAILED_PROOFS: ReadonlySet<ErrorCode> = new Set([...FAILED_CREDENTIALS, 'bad_signature', 'stale_signature']);

const unmapped = (address: string): string =>
  address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;

/** A BlockList of proxies (IP addresses and CIDR ranges, as RELAY_TRUSTED_PROXIES holds them). */
export function proxyList(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const [address = '', prefix] = range.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

const isTrusted = (proxies: BlockList, address: string): boolean => {
  const family = isIP(address);
  return family !== 0 && proxies.check(address, family === 6 ? 'ipv6' : 'ipv4');
};

/**
 * The client's IP address: the TCP peer's, or, when the peer is a trusted proxy, the nearest
 * address in X-Forwarded-For that is not a trusted proxy itself (the entries before it could be
 * written by the client). IPv4-mapped IPv6 is written as IPv4.
 */
export function clientAddress(req: Pick<IncomingMessage, 'socket' | 'headers'>, proxies?: BlockList): string {
  let address = unmapped(req.socket.remoteAddress ?? 'unknown');
  if (!proxies || !isTrusted(proxies, address)) return address;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((hop) => unmapped(hop.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] ?? '';
    if (isIP(hop) === 0) break;
    address = hop;
    if (!isTrusted(proxies, hop)) break;
  }
  return address;
}

/**
 * A budget of failed authentications per client address, in Redis so that it holds across nodes.
 * Each failure takes one; once the budget is spent, every call from that address is refused with
 * 429 before its credentials are looked at, so guessing keys or tokens costs no Postgres query.
 */
export class AuthFailureLimit {
  private readonly proxies: BlockList | undefined;

  constructor(
    private readonly limiter: RateLimiter,
    private readonly rate: Rate,
    trustedProxies: readonly string[] = [],
  ) {
    this.proxies = trustedProxies.length > 0 ? proxyList(trustedProxies) : undefined;
  }

  /** The address whose budget a request spends (see clientAddress). */
  clientOf(req: Pick<IncomingMessage, 'socket' | 'headers'>): string {
    return clientAddress(req, this.proxies);
  }

  /** Throws 429 rate_limited if `client` has no failures left. */
  async check(client: string): Promise<void> {
    const decision = await this.limiter.peek({ key: `authfail:${client}`, rate: this.rate });
    if (decision.allowed) return;
    const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    throw new AppError(
      'rate_limited',
      `Too many failed authentications from ${client}; retry after ${retryAfter} s with valid credentials.`,
      {
        extensions: { retry_after: retryAfter },
      },
    );
  }

  /** Takes one failure from `client`'s budget if `error` is a failed authentication. */
  async record(client: string, error: unknown, isTokenProof = false): Promise<void> {
    if (!(error instanceof AppError) || !(isTokenProof ? FAILED_PROOFS : FAILED_CREDENTIALS).has(error.code)) return;
    await this.limiter.decide({ key: `authfail:${client}`, rate: this.rate });
  }

  /** Refuses a request from an address that has used up its failures (the first handler of the API). */
  readonly before: RequestHandler = async (req, _res, next) => {
    try {
      await this.check(this.clientOf(req));
      next();
    } catch (error) {
      next(error);
    }
  };

  /** Counts a failed authentication on its way to the problem middleware (the API's last handler). */
  readonly after: ErrorRequestHandler = async (error: unknown, req, _res, next) => {
    // The failure is answered either way; a limiter that cannot be reached does not change the answer.
    await this.record(this.clientOf(req), error, req.path === '/auth/token').catch(() => undefined);
    next(error);
  };
}

/**
 * Opening a stream needs an API key with the messages:read scope and a token for the address.
 * Browsers cannot set headers on a WebSocket upgrade, so the query string may carry both. An
 * upgrade counts against its address's failed-authentication budget; a re-check of an open
 * stream (without a socket) does not.
 */
export const streamGuard = (
  apiKeys: ApiKeyStore,
  tokens: TokenService,
  required: boolean,
  failures?: AuthFailureLimit,
): StreamGuard =>
  required
    ? async (req, address, url) => {
        const client = failures && 'socket' in req ? failures.clientOf(req as IncomingMessage) : undefined;
        if (client !== undefined) await failures?.check(client);
        try {
          const header = req.headers['x-api-key'];
          const key = await apiKeys.verify(
            (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('api_key') ?? undefined,
          );
          if (!key.scopes.includes('messages:read'))
            throw new AppError('insufficient_scope', 'Opening a stream needs the "messages:read" scope.');
          await authorizeAddress(tokens, bearerToken(req, url), address);
        } catch (error) {
          if (client !== undefined) await failures?.record(client, error).catch(() => undefined);
          throw error;
        }
      }
    : async () => undefined;
