import { Type, type Static } from '@sinclair/typebox';
import { Problem } from './problem.js';
import { Address, ConsistencyToken, Cursor, Offset, Timestamp, Uuid } from './primitives.js';

export const MAX_CONTENT_BYTES = 65_536;
export const MAX_MESSAGE_TYPE = 50;
export const MAX_SIGNATURE = 8192;
export const MAX_BATCH = 500;
export const MAX_ACK_IDS = 1000;

const RFC3339 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,9})?(?:[Zz]|[+-]\\d{2}:\\d{2})$';

/** The body of POST /api/v1/message/relay, and each item of a batch. */
export const RelayRequest = Type.Object(
  {
    message_id: Uuid,
    from_address: Address,
    to_address: Address,
    message_type: Type.String({ minLength: 1, maxLength: MAX_MESSAGE_TYPE }),
    // Characters bound it here; the relay also holds it to the same number of UTF-8 bytes.
    encrypted_content: Type.String({
      minLength: 1,
      maxLength: MAX_CONTENT_BYTES,
      description: `at most ${MAX_CONTENT_BYTES} bytes of UTF-8`,
    }),
    signature: Type.String({ minLength: 1, maxLength: MAX_SIGNATURE }),
    // Optional, and null means absent; that it lies in the future is checked in code.
    expires_at: Type.Optional(
      Type.Union([Type.String({ pattern: RFC3339 }), Type.Null()], {
        description: 'an RFC 3339 time with a time zone, like 2026-01-01T00:00:00Z',
      }),
    ),
  },
  { $id: 'RelayRequest' },
);
export type RelayRequest = Static<typeof RelayRequest>;

/** The 202 answer for an accepted message. */
export const Accepted = Type.Object(
  {
    message_id: Uuid,
    status: Type.Literal('accepted'),
    partition: Type.Integer({ minimum: 0 }),
    offset: Offset,
    consistency_token: ConsistencyToken,
  },
  { $id: 'Accepted' },
);
export type Accepted = Static<typeof Accepted>;

/** The batch body's shape; each message in it is checked on its own, so one cannot fail the rest. */
export const BatchEnvelope = Type.Object({
  messages: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH }),
});

export const BatchRequest = Type.Object(
  { messages: Type.Array(RelayRequest, { minItems: 1, maxItems: MAX_BATCH }) },
  { $id: 'BatchRequest' },
);

export const BatchResponse = Type.Object(
  {
    results: Type.Array(Type.Union([Accepted, Problem]), {
      description: 'results[i] answers messages[i]: its 202 body or a problem document.',
    }),
    consistency_token: ConsistencyToken,
  },
  { $id: 'BatchResponse' },
);
export type BatchResponse = Static<typeof BatchResponse>;

/** A message as the API returns it: GET /api/v1/messages items and the stream's `message` frames. */
export const MessageView = Type.Object(
  {
    message_id: Uuid,
    from_address: Address,
    to_address: Address,
    message_type: Type.String(),
    encrypted_content: Type.String(),
    signature: Type.String(),
    accepted_at: Timestamp,
    /** When the relay stops offering the message undelivered; the relay always sends it. */
    expires_at: Type.Optional(Timestamp),
    /** The message's place in the log: `after` on GET /messages and on the stream resumes behind it. */
    cursor: Cursor,
  },
  { $id: 'MessageView' },
);
export type MessageView = Static<typeof MessageView>;

/** A message's view, from its MessageSent event or its read-model row: the one place the two agree. */
export function messageView(m: {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly type: string;
  readonly content: string;
  readonly signature: string;
  readonly acceptedAt: Date | number;
  readonly expiresAt: Date | number;
  readonly cursor: string;
}): MessageView {
  return {
    message_id: m.id,
    from_address: m.from,
    to_address: m.to,
    message_type: m.type,
    encrypted_content: m.content,
    signature: m.signature,
    accepted_at: new Date(m.acceptedAt).toISOString(),
    expires_at: new Date(m.expiresAt).toISOString(),
    cursor: m.cursor,
  };
}

/** Bounds of `limit` on GET /api/v1/messages. */
export const MAILBOX_LIMIT = { minimum: 1, maximum: 500, default: 100 } as const;

export const MailboxPage = Type.Object(
  { messages: Type.Array(MessageView), next_cursor: Type.Union([Cursor, Type.Null()]) },
  { $id: 'MailboxPage' },
);
export type MailboxPage = Static<typeof MailboxPage>;

export const AckRequest = Type.Object(
  { address: Address, message_ids: Type.Array(Uuid, { minItems: 1, maxItems: MAX_ACK_IDS }) },
  { $id: 'AckRequest' },
);
export type AckRequest = Static<typeof AckRequest>;

/** What an acknowledgement did with one message id. */
export const AckStatus = Type.Union([
  Type.Literal('acknowledged'),
  Type.Literal('already_delivered'),
  Type.Literal('expired'),
  Type.Literal('not_found'),
  Type.Literal('not_yet_known'),
]);
export type AckStatus = Static<typeof AckStatus>;

export const AckResult = Type.Object({ message_id: Uuid, status: AckStatus });
export type AckResult = Static<typeof AckResult>;

/** The answer to an acknowledgement: how many it newly acknowledged, and what it did with each id. */
export const AckAnswer = Type.Object(
  {
    acknowledged: Type.Integer({ minimum: 0 }),
    results: Type.Array(AckResult),
    /** The positions of the MessageDelivered events, for a read that should see them (empty if none). */
    consistency_token: ConsistencyToken,
  },
  { $id: 'AckAnswer' },
);
export type AckAnswer = Static<typeof AckAnswer>;
