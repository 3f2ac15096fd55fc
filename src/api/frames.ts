import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { AckAnswer, MAX_ACK_IDS, MessageView } from './messages.js';
import { Problem } from './problem.js';
import { Cursor, Uuid } from './primitives.js';
import { validator } from './validate.js';

// The WebSocket stream's frames (GET /api/v1/stream). OpenAPI cannot describe WebSocket frames, so
// the document lists these under components and the stream operation's description names them.

/** Client to server: acknowledge messages of the stream's address. */
export const AckFrame = Type.Object(
  { type: Type.Literal('ack'), message_ids: Type.Array(Uuid, { minItems: 1, maxItems: MAX_ACK_IDS }) },
  { $id: 'AckFrame' },
);
export type AckFrame = Static<typeof AckFrame>;

export const MessageFrame = Type.Composite([Type.Object({ type: Type.Literal('message') }), MessageView], {
  $id: 'MessageFrame',
});
export type MessageFrame = Static<typeof MessageFrame>;

export const AckResultFrame = Type.Composite([Type.Object({ type: Type.Literal('ack_result') }), AckAnswer], {
  $id: 'AckResultFrame',
});
export type AckResultFrame = Static<typeof AckResultFrame>;

export const ErrorFrame = Type.Object({ type: Type.Literal('error'), problem: Problem }, { $id: 'ErrorFrame' });
export type ErrorFrame = Static<typeof ErrorFrame>;

/**
 * A message as a client may receive it: a relay older than cursors leaves `cursor` out, so the
 * reference client accepts a message without one (it just cannot resume behind it).
 */
export const RelayedMessage = Type.Composite([
  Type.Omit(MessageView, ['cursor']),
  Type.Object({ cursor: Type.Optional(Cursor) }),
]);
export type RelayedMessage = Static<typeof RelayedMessage>;

// A client reads an ack_result leniently (members a relay left out count as none), as it always has.
const ServerFrames = { message: RelayedMessage, ack_result: Type.Partial(AckAnswer), error: ErrorFrame } as const;
export type ServerFrame =
  ({ readonly type: 'message' } & RelayedMessage) | ({ readonly type: 'ack_result' } & Partial<AckAnswer>) | ErrorFrame;

/**
 * One stream frame as text: JSON, an object, with a string `type`. Both ends read frames with it
 * and then check the frame against its type's schema; a frame that fails is an AppError with the
 * code the server answers with (unsupported_media_type, malformed_json, invalid_request).
 */
export function readFrame(
  text: string,
  isBinary: boolean,
): { readonly type: string; readonly [member: string]: unknown } {
  if (isBinary) throw new AppError('unsupported_media_type', 'Stream frames are JSON text.');
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new AppError('malformed_json', 'The frame is not valid JSON.');
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame))
    throw new AppError('invalid_request', 'frame must be a JSON object.', { extensions: { field: 'frame' } });
  const type = (frame as { type?: unknown }).type;
  if (typeof type !== 'string')
    throw new AppError('invalid_request', 'Frames have a string "type".', { extensions: { field: 'type' } });
  return frame as { readonly type: string };
}

const checkAck = validator(AckFrame, 'frame');

/** A client's frame, as the server reads it: only `ack` frames exist. */
export function readClientFrame(text: string, isBinary: boolean): AckFrame {
  const frame = readFrame(text, isBinary);
  if (frame.type !== 'ack')
    throw new AppError('invalid_request', 'Frames have "type": "ack".', { extensions: { field: 'type' } });
  return checkAck(frame);
}

const serverChecks = Object.fromEntries(
  Object.entries(ServerFrames).map(([type, schema]: [string, TSchema]) => [type, validator(schema, type)]),
);

/**
 * A server's frame, as a client reads it; undefined for a frame type added after this client
 * (it is not for this version). A frame of a known type that breaks its schema throws.
 */
export function readServerFrame(text: string, isBinary: boolean): ServerFrame | undefined {
  const frame = readFrame(text, isBinary);
  const check = serverChecks[frame.type];
  if (!check) return undefined;
  check(frame);
  return frame as unknown as ServerFrame;
}
