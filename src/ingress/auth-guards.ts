import type { IncomingMessage } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError } from '../errors/app-error.js';
import type { ErrorCode } from '../errors/codes.js';
import type { ApiKeyStore } from './api-keys.js';
import { openMailboxes, type MailboxGuard } from './api-routes.js';
import type { RateLimiter, Rate } from './rate-limit.js';
import type { StreamGuard } from './stream-hub.js';
import { authorizeAddress, bearerToken, type TokenService } from './tokens.js';

/** Reading or acknowledging a mailbox needs a token issued to that address (RELAY_AUTH=required). */
export const mailboxGuard = (tokens: TokenService, required: boolean): MailboxGuard =>
  required ? (req, address) => authorizeAddress(tokens, bearerToken(req), address) : openMailboxes;

/** A credential that was presented and is wrong; a missing one is not a guess and costs nothing. */
const FAILED_CREDENTIALS: ReadonlySet<ErrorCode> = new Set(['invalid_api_key', 'invalid_token', 'invalid_nonce']);
/** On the token endpoint, a proof that does not verify is a failed authentication too. */
const FAILED_PROOFS: ReadonlySet<ErrorCode> = new Set([...FAILED_CREDENTIALS, 'bad_signature', 'stale_signature']);

/** The client's IP address as the socket sees it, IPv4-mapped IPv6 written as IPv4. */
export const clientAddress = (req: Pick<IncomingMessage, 'socket'>): string => {
  const address = req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
};

/**
 * A budget of failed authentications per client address, in Redis so that it holds across nodes.
 * Each failure takes one; once the budget is spent, every call from that address is refused with
 * 429 before its credentials are looked at, so guessing keys or tokens costs no Postgres query.
 */
export class AuthFailureLimit {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly rate: Rate,
  ) {}

  /** Throws 429 rate_limited if `client` has no failures left. */
  async check(client: string): Promise<void> {
    const decision = await this.limiter.peek({ key: `authfail:${client}`, rate: this.rate });
    if (decision.allowed) return;
    const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    throw new AppError('rate_limited', `Too many failed authentications from ${client}; retry after ${retryAfter} s with valid credentials.`, {
      extensions: { retry_after: retryAfter },
    });
  }

  /** Takes one failure from `client`'s budget if `error` is a failed authentication. */
  async record(client: string, error: unknown, isTokenProof = false): Promise<void> {
    if (!(error instanceof AppError) || !(isTokenProof ? FAILED_PROOFS : FAILED_CREDENTIALS).has(error.code)) return;
    await this.limiter.decide({ key: `authfail:${client}`, rate: this.rate });
  }

  /** Refuses a request from an address that has used up its failures (the first handler of the API). */
  readonly before: RequestHandler = async (req, _res, next) => {
    try {
      await this.check(clientAddress(req));
      next();
    } catch (error) {
      next(error);
    }
  };

  /** Counts a failed authentication on its way to the problem middleware (the API's last handler). */
  readonly after: ErrorRequestHandler = async (error: unknown, req, _res, next) => {
    // The failure is answered either way; a limiter that cannot be reached does not change the answer.
    await this.record(clientAddress(req), error, req.path === '/auth/token').catch(() => undefined);
    next(error);
  };
}

/**
 * Opening a stream needs an API key with the messages:read scope and a token for the address.
 * Browsers cannot set headers on a WebSocket upgrade, so the query string may carry both. An
 * upgrade counts against its address's failed-authentication budget; a re-check of an open
 * stream (without a socket) does not.
 */
export const streamGuard = (apiKeys: ApiKeyStore, tokens: TokenService, required: boolean, failures?: AuthFailureLimit): StreamGuard =>
  required
    ? async (req, address, url) => {
        const client = failures && 'socket' in req ? clientAddress(req as IncomingMessage) : undefined;
        if (client !== undefined) await failures?.check(client);
        try {
          const header = req.headers['x-api-key'];
          const key = await apiKeys.verify((Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('api_key') ?? undefined);
          if (!key.scopes.includes('messages:read')) throw new AppError('insufficient_scope', 'Opening a stream needs the "messages:read" scope.');
          await authorizeAddress(tokens, bearerToken(req, url), address);
        } catch (error) {
          if (client !== undefined) await failures?.record(client, error).catch(() => undefined);
          throw error;
        }
      }
    : async () => undefined;
