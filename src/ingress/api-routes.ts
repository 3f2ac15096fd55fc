import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { AppError } from '../errors/app-error.js';
import { problemOf } from './problem.js';
import type { ProofReader } from '../anchoring/proof-reader.js';
import type { LogPosition } from '../projections/checkpoint-watch.js';
import type { MailboxReader } from './mailbox-reader.js';
import type { MessageRelay } from './message-relay.js';
import type { PeerDirectory } from './peer-directory.js';
import { apiKeyMiddleware, requireScope, type ApiKeyInfo, type ApiKeyStore } from './api-keys.js';
import type { AuthFailureLimit, MailboxGuard } from './auth-guards.js';
import { rateLimitHeaders, type Rate, type RateLimiter } from './rate-limit.js';
import type { TokenService } from './tokens.js';
import { ReadConsistency, RESULT_HEADER, TOKEN_HEADER, TOKEN_PARAM, type TokenTopic } from './read-consistency.js';
import { integerParam, invalid, optionalParam } from './validation.js';
import { ChallengeRequest, TokenRequest } from '../api/auth.js';
import { AckRequest, BatchEnvelope, MAILBOX_LIMIT, RelayRequest } from '../api/messages.js';
import { BATCH_LIMIT, OPENAPI_PATH, SINGLE_LIMIT, SMALL_LIMIT, openApiDocument } from '../api/openapi.js';
import { DISCOVER_LIMIT, RegisterRequest } from '../api/peers.js';
import { Address, Uuid } from '../api/primitives.js';
import { validator } from '../api/validate.js';

// Each body and parameter is checked against its schema in src/api before a handler reads it.
const parse = {
  challenge: validator(ChallengeRequest, 'body'),
  token: validator(TokenRequest, 'body'),
  register: validator(RegisterRequest, 'body'),
  message: validator(RelayRequest, 'body'),
  batch: validator(BatchEnvelope, 'body'),
  ack: validator(AckRequest, 'body'),
  address: validator(Address, 'address'),
  id: validator(Uuid, 'id'),
};

/** The served OpenAPI document; built once, as it only changes with the code. */
let served: string | undefined;
const openApiJson = (): string =>
  (served ??= JSON.stringify(openApiDocument(process.env['npm_package_version'] ?? '1')));

/**
 * Decides whether a request may read or acknowledge `address`'s mailbox, throwing an AppError if
 * not. The security layer supplies the real check; the read path calls it in every place it must.
 */
/**
 * Waits until the read model covers the writes a read follows, and says in a header whether it
 * does. Returns the positions the read must see (for a read replica to be chosen by).
 */
async function readAfterWrites(
  consistency: ReadConsistency,
  req: Request,
  res: Response,
  topic: TokenTopic,
  key: string,
): Promise<LogPosition[]> {
  const token = req.get(TOKEN_HEADER) ?? optionalParam(req.query, TOKEN_PARAM);
  const { applied, positions } = await consistency.settle(token, topic, key);
  res.set(RESULT_HEADER, applied ? 'consistent' : 'stale');
  return positions;
}

export interface ApiDeps {
  readonly consistency: ReadConsistency;
  readonly relay: MessageRelay;
  readonly peers: PeerDirectory;
  readonly mailbox: MailboxReader;
  readonly tokens: TokenService;
  readonly authorizeMailbox: MailboxGuard;
  /** Merkle proofs of anchored messages (docs/guides/anchoring.md); without it the route answers 404. */
  readonly proofs?: ProofReader;
  /** With auth required: API keys for every call, a rate limit per key, and a budget of failed authentications per client address. */
  readonly gate?: {
    readonly apiKeys: ApiKeyStore;
    readonly limiter: RateLimiter;
    readonly keyRate: Rate;
    readonly failures: AuthFailureLimit;
  };
}

/** How deep a JSON body may nest; the API's deepest documents are a JWK inside a batch. */
export const MAX_JSON_DEPTH = 16;

function depthOf(value: unknown, limit: number, depth = 0): number {
  if (depth > limit || typeof value !== 'object' || value === null) return depth;
  let deepest = depth;
  for (const inner of Object.values(value)) {
    deepest = Math.max(deepest, depthOf(inner, limit, depth + 1));
    if (deepest > limit) break;
  }
  return deepest;
}

/**
 * Compressed bodies are refused before a byte is read: inflating them would let a small body
 * cost the relay up to the (large) batch limit in memory and parsing. `identity` means none.
 */
const isUncompressed = (req: Request): boolean => {
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  return encoding === '' || encoding === 'identity';
};

/**
 * A JSON body of at most `limit` bytes, as one middleware (each layer a request passes through
 * costs it a match and a call): the media type and encoding are checked before a byte is read,
 * then body-parser reads and parses it, then its depth is bounded.
 */
const json = (limit: number): RequestHandler => {
  const parseJson = express.json({ limit, strict: true, inflate: false });
  return (req, res, next) => {
    if (!isUncompressed(req)) {
      next(
        new AppError(
          'unsupported_media_type',
          'Send the body uncompressed: the relay does not accept a Content-Encoding such as gzip.',
        ),
      );
      return;
    }
    if (!req.is('application/json')) {
      next(new AppError('unsupported_media_type', 'Send the body as application/json.'));
      return;
    }
    parseJson(req, res, (error?: unknown) => {
      if (error) next(error);
      else
        next(
          depthOf(req.body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH
            ? invalid('body', `JSON may nest at most ${MAX_JSON_DEPTH} levels deep.`)
            : undefined,
        );
    });
  };
};

/** The v1 HTTP API (docs/reference/api.md). */
export function apiRoutes(deps: ApiDeps): Router {
  const router = Router();
  const { gate } = deps;
  // The contract needs no credentials: it is served before the gate.
  router.get(OPENAPI_PATH.slice('/api/v1'.length), (_req, res) => {
    res.type('application/json').send(openApiJson());
  });
  if (gate) {
    router.use(gate.failures.before);
    router.use(apiKeyMiddleware(gate.apiKeys));
    router.use(async (_req, res, next) => {
      const key = res.locals['apiKey'] as ApiKeyInfo;
      const decision = await gate.limiter.decide({ key: `key:${key.id}`, rate: gate.keyRate });
      res.set(rateLimitHeaders(decision));
      next(
        decision.allowed
          ? undefined
          : new AppError('rate_limited', `This API key is over its rate of ${gate.keyRate.perSecond} requests/s.`, {
              extensions: { retry_after: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)) },
            }),
      );
    });
  }
  // Without the gate there is nothing to check, and no layer is added for it.
  const scope = (name: Parameters<typeof requireScope>[0]): RequestHandler[] => (gate ? [requireScope(name)] : []);

  // The routes a request is matched against in this order: the busiest first.
  router.post('/message/relay', ...scope('messages:write'), json(SINGLE_LIMIT), async (req, res) => {
    const [result] = await deps.relay.relay([parse.message(req.body)]);
    if (result instanceof AppError) throw result;
    res.status(202).json(result);
  });

  router.post('/message/relay/batch', ...scope('messages:write'), json(BATCH_LIMIT), async (req, res) => {
    const { messages } = parse.batch(req.body);
    const results = await deps.relay.relay(messages);
    const accepted = results.filter((r) => !(r instanceof AppError));
    res.json({
      results: results.map((r) => (r instanceof AppError ? problemOf(r) : r)),
      consistency_token: ReadConsistency.token('mailbox', accepted),
    });
  });

  router.post('/auth/challenge', json(SMALL_LIMIT), async (req, res) => {
    res.json(await deps.tokens.challenge(parse.challenge(req.body)));
  });

  router.post('/auth/token', json(SMALL_LIMIT), async (req, res) => {
    res.json(await deps.tokens.issue(parse.token(req.body)));
  });

  router.post('/peer/register', ...scope('peers:write'), json(SMALL_LIMIT), async (req, res) => {
    res.status(202).json(await deps.peers.register(parse.register(req.body)));
  });

  router.get('/peers/discover', ...scope('peers:read'), async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const address = parse.address(query['address']);
    const limit = integerParam(query, 'limit', DISCOVER_LIMIT.minimum, DISCOVER_LIMIT.maximum, DISCOVER_LIMIT.default);
    res.json(await deps.peers.discover(address, limit, optionalParam(query, 'cursor')));
  });

  router.get('/peers/:address', ...scope('peers:read'), async (req, res) => {
    const address = parse.address(req.params['address']);
    const covering = await readAfterWrites(deps.consistency, req, res, 'peers', address);
    res.json(await deps.peers.get(address, covering));
  });

  router.get('/messages', ...scope('messages:read'), async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const address = parse.address(query['address']);
    const limit = integerParam(query, 'limit', MAILBOX_LIMIT.minimum, MAILBOX_LIMIT.maximum, MAILBOX_LIMIT.default);
    const after = optionalParam(query, 'after');
    await deps.authorizeMailbox(req, address);
    const covering = await readAfterWrites(deps.consistency, req, res, 'mailbox', address);
    res.json(await deps.mailbox.undelivered(address, after, limit, covering));
  });

  // A message's proof is for its recipient or its sender: a token for either address.
  router.get('/messages/:id/proof', ...scope('messages:read'), async (req, res) => {
    const id = parse.id(req.params['id']).toLowerCase();
    if (!deps.proofs) throw new AppError('not_found', 'This relay does not serve anchoring proofs.');
    const { sender, recipient } = await deps.proofs.subject(id);
    try {
      await deps.authorizeMailbox(req, recipient);
    } catch (error) {
      if (sender === recipient) throw error;
      await deps.authorizeMailbox(req, sender).catch(() => {
        throw error;
      });
    }
    res.json(await deps.proofs.proof(id));
  });

  router.post('/messages/ack', ...scope('messages:read'), json(SMALL_LIMIT), async (req, res) => {
    const { address, message_ids: ids } = parse.ack(req.body);
    await deps.authorizeMailbox(req, address);
    res.json(await deps.relay.acknowledge(address, ids, 'http'));
  });

  if (gate) router.use(gate.failures.after);
  return router;
}
