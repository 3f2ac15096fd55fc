import type { MessageSent } from '../events/types.js';
import { expiresAtOf } from '../expiry/lifetime.js';

/** A message as the API returns it: GET /api/v1/messages and the stream's `message` frames. */
export interface MessageView {
  readonly message_id: string;
  readonly from_address: string;
  readonly to_address: string;
  readonly message_type: string;
  readonly encrypted_content: string;
  readonly signature: string;
  readonly accepted_at: string;
  /**
   * When the relay stops offering the message undelivered. Always sent by the relay; optional
   * here because a sender may, but need not, ask for an earlier one in its relay request.
   */
  readonly expires_at?: string;
  /**
   * The message's place in the log, as a mailbox cursor: `after` on GET /messages and on the
   * stream resumes behind it.
   */
  readonly cursor: string;
}

/** A mailbox cursor: the log position (partition, offset) of a message, base64url of `partition:offset`. */
export const encodeCursor = (partition: number, offset: string): string => Buffer.from(`${partition}:${offset}`).toString('base64url');

export const toStreamMessage = (m: MessageSent, partition: number, offset: string): MessageView => ({
  message_id: m.message_id,
  from_address: m.from_address,
  to_address: m.to_address,
  message_type: m.message_type,
  encrypted_content: m.encrypted_content,
  signature: m.signature,
  accepted_at: new Date(m.occurred_at).toISOString(),
  expires_at: new Date(expiresAtOf(m)).toISOString(),
  cursor: encodeCursor(partition, offset),
});
