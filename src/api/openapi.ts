import { Type, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES, type ErrorCode } from '../errors/codes.js';
import { AccessToken, Challenge, ChallengeRequest, Jwks, TokenRequest } from './auth.js';
import { AckFrame, AckResultFrame, ErrorFrame, MessageFrame } from './frames.js';
import { Health, Readiness } from './health.js';
import {
  AckAnswer,
  AckRequest,
  Accepted,
  BatchRequest,
  BatchResponse,
  MAILBOX_LIMIT,
  MailboxPage,
  RelayRequest,
} from './messages.js';
import { DISCOVER_LIMIT, DiscoverPage, PeerView, RegisterRequest, Registered } from './peers.js';
import { Address, ConsistencyToken, Cursor, Uuid } from './primitives.js';
import { Problem, PROBLEM_CONTENT_TYPE } from './problem.js';
import { MessageProof } from './proof.js';

/** Where the document is served; it needs no credentials. */
export const OPENAPI_PATH = '/api/v1/openapi.json';

type Scope = 'peers:write' | 'peers:read' | 'messages:write' | 'messages:read';

interface Parameter {
  readonly name: string;
  readonly in: 'query' | 'path' | 'header';
  readonly required?: boolean;
  readonly description: string;
  readonly schema: TSchema;
}

/** One operation, as the routes implement it; the document and the contract test are built from this list. */
export interface Operation {
  readonly method: 'get' | 'post';
  /** The path in OpenAPI form (`{address}`), with its base. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  /** Under /api/v1 with RELAY_AUTH=required: an API key, this scope if any, and a bearer token if `token`. */
  readonly auth: 'none' | { readonly scope?: Scope; readonly token?: boolean };
  readonly parameters?: readonly Parameter[];
  readonly body?: { readonly schema: TSchema; readonly limit: number };
  readonly ok: {
    readonly status: number;
    readonly description: string;
    readonly schema?: TSchema;
    readonly contentType?: string;
  };
  /** Problem codes this operation answers with beyond the ones its auth and body imply. */
  readonly errors: readonly ErrorCode[];
  /** Other documented answers that are not problem documents (readiness's 503). */
  readonly other?: Readonly<Record<number, { readonly description: string; readonly schema: TSchema }>>;
}

export const SINGLE_LIMIT = 65_536 * 2;
export const BATCH_LIMIT = 500 * (65_536 + 12_288);
export const SMALL_LIMIT = 64 * 1024;

const consistencyParameters: readonly Parameter[] = [
  {
    name: 'Consistency-Token',
    in: 'header',
    description: 'Wait until the read model has applied these writes (docs/reference/api.md).',
    schema: ConsistencyToken,
  },
  {
    name: 'consistency_token',
    in: 'query',
    description: 'The same, for clients that cannot set headers.',
    schema: ConsistencyToken,
  },
];

/** A dependency the relay needs did not answer (Postgres, Redis, Kafka): mapped by the problem middleware. */
const DEPENDENT: readonly ErrorCode[] = ['internal_error', 'dependency_unavailable'];

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'post',
    path: '/api/v1/auth/challenge',
    operationId: 'authChallenge',
    summary: 'Issue a nonce for the access token flow',
    auth: {},
    body: { schema: ChallengeRequest, limit: SMALL_LIMIT },
    ok: { status: 200, description: 'A nonce, valid for one proof by the address for 300 s.', schema: Challenge },
    errors: DEPENDENT,
  },
  {
    method: 'post',
    path: '/api/v1/auth/token',
    operationId: 'authToken',
    summary: 'Exchange a signed proof for an access token',
    auth: {},
    body: { schema: TokenRequest, limit: SMALL_LIMIT },
    ok: { status: 200, description: "An access token bound to the signer's address.", schema: AccessToken },
    errors: ['bad_signature', 'stale_signature', 'invalid_nonce', ...DEPENDENT],
  },
  {
    method: 'post',
    path: '/api/v1/peer/register',
    operationId: 'registerPeer',
    summary: 'Register a peer, or replace its keys and connection info',
    auth: { scope: 'peers:write' },
    body: { schema: RegisterRequest, limit: SMALL_LIMIT },
    ok: {
      status: 202,
      description: 'The PeerRegistered event is acknowledged by all in-sync replicas.',
      schema: Registered,
    },
    errors: ['bad_signature', 'stale_signature', 'registration_superseded', 'overloaded', ...DEPENDENT],
  },
  {
    method: 'get',
    path: '/api/v1/peers/discover',
    operationId: 'discoverPeers',
    summary: 'List online peers, most recently seen first',
    auth: { scope: 'peers:read' },
    parameters: [
      {
        name: 'address',
        in: 'query',
        required: true,
        description: 'The caller, left out of the results.',
        schema: Address,
      },
      { name: 'limit', in: 'query', description: 'The most peers to return.', schema: Type.Integer(DISCOVER_LIMIT) },
      { name: 'cursor', in: 'query', description: 'A next_cursor from the previous page.', schema: Cursor },
    ],
    ok: { status: 200, description: 'A page of online peers.', schema: DiscoverPage },
    errors: ['invalid_request', ...DEPENDENT],
  },
  {
    method: 'get',
    path: '/api/v1/peers/{address}',
    operationId: 'getPeer',
    summary: 'One registered peer, with its presence',
    auth: { scope: 'peers:read' },
    parameters: [
      { name: 'address', in: 'path', required: true, description: 'The peer.', schema: Address },
      ...consistencyParameters,
    ],
    ok: {
      status: 200,
      description: 'The peer; `Relay-Consistency` says whether the read caught up.',
      schema: PeerView,
    },
    errors: ['invalid_request', 'peer_not_found', ...DEPENDENT],
  },
  {
    method: 'post',
    path: '/api/v1/message/relay',
    operationId: 'relayMessage',
    summary: 'Accept one signed, encrypted message',
    auth: { scope: 'messages:write' },
    body: { schema: RelayRequest, limit: SINGLE_LIMIT },
    ok: {
      status: 202,
      description: 'The MessageSent event is acknowledged by all in-sync replicas.',
      schema: Accepted,
    },
    errors: ['bad_signature', 'stale_signature', 'message_id_conflict', 'overloaded', ...DEPENDENT],
  },
  {
    method: 'post',
    path: '/api/v1/message/relay/batch',
    operationId: 'relayBatch',
    summary: 'Accept up to 500 messages, each on its own',
    auth: { scope: 'messages:write' },
    body: { schema: BatchRequest, limit: BATCH_LIMIT },
    ok: {
      status: 200,
      description: 'Each message is accepted or refused; results[i] answers messages[i].',
      schema: BatchResponse,
    },
    errors: DEPENDENT,
  },
  {
    method: 'get',
    path: '/api/v1/messages',
    operationId: 'readMailbox',
    summary: "A recipient's undelivered messages, oldest first",
    auth: { scope: 'messages:read', token: true },
    parameters: [
      {
        name: 'address',
        in: 'query',
        required: true,
        description: 'The recipient whose mailbox to read.',
        schema: Address,
      },
      { name: 'limit', in: 'query', description: 'The most messages to return.', schema: Type.Integer(MAILBOX_LIMIT) },
      { name: 'after', in: 'query', description: "A next_cursor, or any message's cursor.", schema: Cursor },
      ...consistencyParameters,
    ],
    ok: {
      status: 200,
      description: 'A page of the mailbox; `Relay-Consistency` says whether the read caught up.',
      schema: MailboxPage,
    },
    errors: ['invalid_request', ...DEPENDENT],
  },
  {
    method: 'get',
    path: '/api/v1/messages/{id}/proof',
    operationId: 'messageProof',
    summary: 'The Merkle proof that a message was anchored on chain',
    auth: { scope: 'messages:read', token: true },
    parameters: [{ name: 'id', in: 'path', required: true, description: 'The message id.', schema: Uuid }],
    ok: { status: 200, description: 'The proof (docs/guides/anchoring.md).', schema: MessageProof },
    errors: ['invalid_request', 'not_found', 'message_not_found', 'not_anchored_yet', ...DEPENDENT],
  },
  {
    method: 'post',
    path: '/api/v1/messages/ack',
    operationId: 'acknowledgeMessages',
    summary: 'Acknowledge messages on behalf of their recipient',
    auth: { scope: 'messages:read', token: true },
    body: { schema: AckRequest, limit: SMALL_LIMIT },
    ok: { status: 200, description: 'What the acknowledgement did with each id.', schema: AckAnswer },
    errors: ['overloaded', ...DEPENDENT],
  },
  {
    method: 'get',
    path: '/api/v1/stream',
    operationId: 'openStream',
    summary: "The WebSocket stream of a recipient's messages",
    description:
      'A WebSocket upgrade (`Upgrade: websocket`). The server sends `MessageFrame`, `AckResultFrame` and `ErrorFrame` text frames; the ' +
      'client sends `AckFrame`s (see components.schemas; OpenAPI cannot describe frames). A refused upgrade is answered over plain HTTP ' +
      'with a problem document. Browsers may pass the API key and token as `api_key` and `access_token`. See docs/reference/api.md.',
    auth: { scope: 'messages:read', token: true },
    parameters: [
      { name: 'address', in: 'query', required: true, description: 'The recipient.', schema: Address },
      { name: 'after', in: 'query', description: 'Resume behind this message cursor.', schema: Cursor },
    ],
    ok: { status: 101, description: 'Switching to the WebSocket protocol.' },
    errors: ['invalid_request', 'not_found', 'too_many_streams', 'internal_error'],
  },
  {
    method: 'get',
    path: '/api/v1/openapi.json',
    operationId: 'openApiDocument',
    summary: 'This document',
    auth: 'none',
    ok: {
      status: 200,
      description: 'The OpenAPI 3.1 document of this API.',
      schema: Type.Object({ openapi: Type.Literal('3.1.0') }, { additionalProperties: true }),
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    summary: 'Liveness: the process answers',
    auth: 'none',
    ok: { status: 200, description: 'Always, while the process serves HTTP.', schema: Health },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary: 'Readiness: every dependency answers',
    auth: 'none',
    ok: { status: 200, description: 'Every check is up.', schema: Readiness },
    errors: [],
    other: { 503: { description: 'A check is down (plain JSON; `down` names them).', schema: Readiness } },
  },
  {
    method: 'get',
    path: '/.well-known/jwks.json',
    operationId: 'jwks',
    summary: 'The public keys that verify access tokens',
    auth: 'none',
    ok: { status: 200, description: 'A JSON Web Key Set; `Cache-Control: max-age=60`.', schema: Jwks },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics in the text exposition format',
    auth: 'none',
    ok: { status: 200, description: 'The metrics.', schema: Type.String(), contentType: 'text/plain' },
    errors: [],
  },
];

/** Every problem code an operation can answer with: its own, and those its gate, scope, token and body imply. */
export function problemCodes(op: Operation): ErrorCode[] {
  const codes = new Set<ErrorCode>(op.errors);
  if (op.auth !== 'none') {
    codes.add('missing_api_key').add('invalid_api_key');
    // The API key's rate, or the client address's budget of failed authentications.
    codes.add('rate_limited');
    if (op.auth.scope) codes.add('insufficient_scope');
    if (op.auth.token) codes.add('missing_token').add('invalid_token').add('address_mismatch');
  }
  if (op.body)
    ['malformed_json', 'invalid_request', 'payload_too_large', 'unsupported_media_type'].forEach((code) =>
      codes.add(code as ErrorCode),
    );
  return [...codes];
}

/** The problem codes of an operation, by HTTP status. */
export function problemsByStatus(op: Operation): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of problemCodes(op)) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The schema as plain JSON Schema: TypeBox's symbols dropped, and every nested schema that has an
 * `$id` replaced by a reference to it under components (collected in `named`).
 */
function plain(schema: unknown, named: Map<string, Json>): Json {
  if (Array.isArray(schema)) return schema.map((item) => plain(item, named));
  if (typeof schema !== 'object' || schema === null) return schema as Json;
  const { $id: id, ...rest } = schema as Record<string, unknown>;
  const body = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, plain(value, named)]));
  if (typeof id !== 'string') return body;
  named.set(id, body);
  return { $ref: `#/components/schemas/${id}` };
}

const title = (status: number): string =>
  ({
    400: 'Bad request',
    401: 'Not authenticated',
    403: 'Forbidden',
    404: 'Not found',
    409: 'Conflict',
    413: 'Body too large',
    415: 'Unsupported media type',
    429: 'Too many requests',
    500: 'Internal error',
    503: 'Unavailable',
  })[status] ?? 'Error';

/** The OpenAPI 3.1 document of the relay's HTTP API, built from OPERATIONS and the contract's schemas. */
export function openApiDocument(version: string): Record<string, Json> {
  const named = new Map<string, Json>();
  const ref = (schema: TSchema): Json => plain(schema, named);
  for (const frame of [AckFrame, MessageFrame, AckResultFrame, ErrorFrame, Problem]) ref(frame);
  const paths: Record<string, Record<string, Json>> = {};
  for (const op of OPERATIONS) {
    const responses: Record<string, Json> = {
      [String(op.ok.status)]: {
        description: op.ok.description,
        ...(op.ok.schema
          ? { content: { [op.ok.contentType ?? 'application/json']: { schema: ref(op.ok.schema) } } }
          : {}),
      },
    };
    for (const [status, { description, schema }] of Object.entries(op.other ?? {})) {
      responses[status] = { description, content: { 'application/json': { schema: ref(schema) } } };
    }
    for (const [status, codes] of problemsByStatus(op)) {
      responses[String(status)] = {
        description: `${title(status)}: ${codes.map((code) => `\`${code}\``).join(', ')}.`,
        content: {
          [PROBLEM_CONTENT_TYPE]: {
            schema: {
              allOf: [
                ref(Problem),
                { type: 'object', properties: { status: { const: status }, code: { enum: codes } } },
              ],
            },
          },
        },
      };
    }
    const security: Json =
      op.auth === 'none'
        ? []
        : op.operationId === 'openStream'
          ? [
              { ApiKey: [], Bearer: [] },
              { ApiKeyQuery: [], BearerQuery: [] },
            ]
          : [op.auth.token ? { ApiKey: [], Bearer: [] } : { ApiKey: [] }];
    paths[op.path] = {
      ...paths[op.path],
      [op.method]: {
        operationId: op.operationId,
        summary: op.summary,
        ...(op.description ? { description: op.description } : {}),
        ...(op.auth !== 'none' && op.auth.scope ? { 'x-relay-scope': op.auth.scope } : {}),
        security,
        ...(op.parameters
          ? {
              parameters: op.parameters.map((p) => ({
                name: p.name,
                in: p.in,
                required: p.required ?? false,
                description: p.description,
                schema: ref(p.schema),
              })),
            }
          : {}),
        ...(op.body
          ? {
              requestBody: {
                required: true,
                description: `At most ${op.body.limit} bytes, uncompressed.`,
                content: { 'application/json': { schema: ref(op.body.schema) } },
              },
            }
          : {}),
        responses,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Relay API',
      version,
      description:
        "The relay's HTTP and WebSocket API. Prose, examples and the stream protocol: docs/reference/api.md; error codes: docs/reference/errors.md.",
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: Object.fromEntries([...named].sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: {
        ApiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'X-API-Key',
          description: 'With RELAY_AUTH=required, every /api/v1 call needs one (`rk_<id>_<secret>`).',
        },
        Bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'An access token for the address (POST /api/v1/auth/token).',
        },
        ApiKeyQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'api_key',
          description: 'The API key, on a stream upgrade that cannot set headers.',
        },
        BearerQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'access_token',
          description: 'The access token, on a stream upgrade that cannot set headers.',
        },
      },
    },
  };
}
