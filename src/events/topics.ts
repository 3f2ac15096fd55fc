import type { EventType } from './types.js';

/** The topics of the event model (docs/reference/events.md), before the configured prefix. */
export const TOPIC = {
  mailbox: 'relay.mailbox.v1',
  peers: 'relay.peers.v1',
  anchors: 'relay.anchors.v1',
  dlq: 'relay.dlq.v1',
} as const;

export type TopicName = keyof typeof TOPIC;

/** Which topic carries each event type; mailbox events are keyed by recipient, peer events by peer. */
export const TOPIC_OF: Readonly<Record<EventType, TopicName>> = {
  MessageSent: 'mailbox',
  MessageDelivered: 'mailbox',
  MessageExpired: 'mailbox',
  PeerRegistered: 'peers',
  PeerPresenceChanged: 'peers',
  AnchorCommitted: 'anchors',
};

export interface Topics {
  readonly mailbox: string;
  readonly peers: string;
  readonly anchors: string;
  readonly dlq: string;
}

export const topicNames = (prefix: string): Topics => ({
  mailbox: prefix + TOPIC.mailbox,
  peers: prefix + TOPIC.peers,
  anchors: prefix + TOPIC.anchors,
  dlq: prefix + TOPIC.dlq,
});
