import { AppError } from '../errors/app-error.js';
import type { ApiKeyStore } from './api-keys.js';
import { openMailboxes, type MailboxGuard } from './api-routes.js';
import type { StreamGuard } from './stream-hub.js';
import { authorizeAddress, bearerToken, type TokenService } from './tokens.js';

/** Reading or acknowledging a mailbox needs a token issued to that address (RELAY_AUTH=required). */
export const mailboxGuard = (tokens: TokenService, required: boolean): MailboxGuard =>
  required ? (req, address) => authorizeAddress(tokens, bearerToken(req), address) : openMailboxes;

/**
 * Opening a stream needs an API key with the messages:read scope and a token for the address.
 * Browsers cannot set headers on a WebSocket upgrade, so the query string may carry both.
 */
export const streamGuard = (apiKeys: ApiKeyStore, tokens: TokenService, required: boolean): StreamGuard =>
  required
    ? async (req, address, url) => {
        const header = req.headers['x-api-key'];
        const key = await apiKeys.verify((Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('api_key') ?? undefined);
        if (!key.scopes.includes('messages:read')) throw new AppError('insufficient_scope', 'Opening a stream needs the "messages:read" scope.');
        await authorizeAddress(tokens, bearerToken(req, url), address);
      }
    : async () => undefined;
