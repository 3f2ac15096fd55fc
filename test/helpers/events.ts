import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { MessageSent, RelayEvent } from '../../src/events/types.js';
import type { TestContext } from './context.js';

/** A MessageSent with made-up fields and fresh ids; `fields` replaces any of them. */
export const messageSent = (fields: Partial<MessageSent> = {}): RelayEvent => ({
  type: 'MessageSent',
  data: {
    event_id: randomUUID(),
    occurred_at: Date.now(),
    message_id: randomUUID(),
    from_address: 'f'.repeat(43),
    to_address: 't'.repeat(43),
    message_type: 't',
    encrypted_content: 'c',
    content_sha256: 'h',
    signature: 's',
    node_id: 'n',
    ...fields,
  },
});

/** Writes records to a topic as given (bytes that are no event too), idempotent and acks all like the relay. */
export async function produceRecords(ctx: TestContext, topic: string, messages: kafkajs.Message[]): Promise<void> {
  const producer = ctx.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}
