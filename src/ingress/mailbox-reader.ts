import type { Pool } from '../postgres/pool.js';
import type { LogPosition } from '../projections/checkpoint-watch.js';
import { readSource, type ReplicaReads } from '../projections/replica-reads.js';
import { decodeCursor, encodeCursor } from '../api/cursors.js';
import { messageView, type MailboxPage } from '../api/messages.js';

/** Reads a recipient's undelivered, unexpired messages from the read model, in the order they were accepted. */
export class MailboxReader {
  constructor(
    private readonly pool: Pool,
    private readonly replica?: ReplicaReads,
  ) {}

  /**
   * With `covering` (the positions the read must see), the read may run on the read replica; a
   * read without it (a stream's backlog, which must see the whole log end) runs on the primary.
   */
  async undelivered(
    address: string,
    after: string | undefined,
    limit: number,
    covering?: readonly LogPosition[],
  ): Promise<MailboxPage> {
    const [partition, offset] = after === undefined ? [-1, '-1'] : decodeCursor(after);
    const source = readSource(this.pool, this.replica, covering);
    const { rows } = await source.query<{
      id: string;
      sender_address: string;
      encrypted_content: string;
      message_type: string;
      signature: string;
      accepted_at: Date;
      expires_at: Date;
      kafka_partition: number;
      kafka_offset: string;
    }>(
      `SELECT id, sender_address, encrypted_content, message_type, signature, accepted_at, expires_at, kafka_partition, kafka_offset
         FROM messages
        WHERE receiver_address = $1 AND NOT delivered AND NOT expired
          -- past its expiry a message is gone at once, before the expiry role's MessageExpired is projected
          AND expires_at > now()
          AND (kafka_partition, kafka_offset) > ($2::int, $3::bigint)
        ORDER BY kafka_partition, kafka_offset
        LIMIT $4`,
      [address, partition, offset, limit],
    );
    const last = rows[rows.length - 1];
    return {
      messages: rows.map((r) =>
        messageView({
          id: r.id,
          from: r.sender_address,
          to: address,
          type: r.message_type,
          content: r.encrypted_content,
          signature: r.signature,
          acceptedAt: r.accepted_at,
          expiresAt: r.expires_at,
          cursor: encodeCursor(r.kafka_partition, r.kafka_offset),
        }),
      ),
      next_cursor: last && rows.length === limit ? encodeCursor(last.kafka_partition, last.kafka_offset) : null,
    };
  }
}
