import type { EventCodec } from '../events/codec.js';
import { TOPIC_OF, type Topics } from '../events/topics.js';
import type { RelayEvent } from '../events/types.js';
import type { BatchingProducer, RecordPosition } from './batching-producer.js';

/** The record key of an event: the recipient for mailbox events, the peer for peer events. */
export const keyOf = (event: RelayEvent): string =>
  'to_address' in event.data
    ? event.data.to_address
    : 'address' in event.data
      ? event.data.address
      : event.data.event_id;

/**
 * Writes events to the topics of the event model: the topic and key follow from the event's
 * type, the value is its Confluent wire-format encoding. Each promise resolves once every
 * in-sync replica has the event.
 */
export class EventPublisher {
  constructor(
    private readonly producer: BatchingProducer,
    private readonly codec: EventCodec,
    private readonly topics: Topics,
  ) {}

  publish(events: readonly RelayEvent[]): Promise<RecordPosition>[] {
    return this.producer.send(
      events.map((event) => ({
        topic: this.topics[TOPIC_OF[event.type]],
        key: keyOf(event),
        value: this.codec.encode(event),
      })),
    );
  }

  publishOne(event: RelayEvent): Promise<RecordPosition> {
    return this.publish([event])[0] as Promise<RecordPosition>;
  }
}
