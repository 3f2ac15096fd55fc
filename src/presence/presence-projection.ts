import type { BatchHandler } from '../kafka/consumer-service.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceStore } from './presence-store.js';

/** Peer and presence events into Redis. Every write is idempotent, so replays are harmless. */
export function presenceProjection(store: PresenceStore, metrics?: Metrics): BatchHandler {
  return async (records) => {
    for (const { event } of records) {
      if (!event) continue;
      if (event.type === 'PeerRegistered') {
        await store.savePeer(event.data.address, {
          signing_key: event.data.signing_key,
          encryption_key: event.data.encryption_key,
          connection_info: event.data.connection_info,
          registered_at: event.data.occurred_at,
        });
      } else if (event.type === 'PeerPresenceChanged') {
        await store.applyPresence(event.data.address, event.data.online, event.data.occurred_at);
      } else continue;
      metrics?.eventsProjected.inc({ projection: 'presence', type: event.type });
    }
  };
}
