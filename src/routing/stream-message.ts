import { encodeCursor } from '../api/cursors.js';
import { messageView, type MessageView } from '../api/messages.js';
import type { MessageSent } from '../events/types.js';
import { expiresAtOf } from '../events/lifetime.js';

export type { MessageView };

/** The view of a message pushed live, from its MessageSent event and its place in the log. */
export const toStreamMessage = (m: MessageSent, partition: number, offset: string): MessageView =>
  messageView({
    id: m.message_id,
    from: m.from_address,
    to: m.to_address,
    type: m.message_type,
    content: m.encrypted_content,
    signature: m.signature,
    acceptedAt: m.occurred_at,
    expiresAt: expiresAtOf(m),
    cursor: encodeCursor(partition, offset),
  });
