import type { BatchHandler } from '../kafka/consumer-service.js';
import { registrationSignedAt } from '../events/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceStore } from './presence-store.js';

/**
 * Peer and presence events into Redis. Every write is idempotent, so replays are harmless; a
 * registration replaces only one signed before it, and a presence event only an older one.
 */
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
          signed_at: registrationSignedAt(event.data),
        });
      } else if (event.type === 'PeerPresenceChanged') {
        await store.applyPresence(event.data.address, event.data.online, event.data.occurred_at);
      } else continue;
      metrics?.eventsProjected.inc({ projection: 'presence', type: event.type });
    }
  };
}
