import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import client from 'prom-client';
import { checkReadiness, type Check } from './health.js';

/** Seconds; accept-to-row and accept-to-frame delays, from a few milliseconds to a minute and beyond. */
const DELAY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The relay's Prometheus metrics, one registry per process (tests may build several). */
export class Metrics {
  readonly registry = new client.Registry();

  readonly httpRequests = new client.Histogram({
    name: 'relay_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly eventsProduced = new client.Counter({
    name: 'relay_events_produced_total',
    help: 'Events acknowledged by Kafka, by topic.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });

  readonly produceBatchSize = new client.Histogram({
    name: 'relay_produce_batch_records',
    help: 'Records per produce request.',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [this.registry],
  });

  readonly produceResends = new client.Counter({
    name: 'relay_produce_resent_records_total',
    help: 'Records sent again because a produce call returned no result for their partition (a leader moved mid-request).',
    registers: [this.registry],
  });

  readonly producerQueueDepth = new client.Gauge({
    name: 'relay_producer_queue_records',
    help: 'Records waiting to be produced.',
    registers: [this.registry],
  });

  readonly loadShed = new client.Counter({
    name: 'relay_load_shed_total',
    help: 'Requests refused with 503 because the producer queue was full.',
    registers: [this.registry],
  });

  readonly eventsProjected = new client.Counter({
    name: 'relay_events_projected_total',
    help: 'Events applied by a projection, by projection and event type.',
    labelNames: ['projection', 'type'] as const,
    registers: [this.registry],
  });

  readonly deadLettered = new client.Counter({
    name: 'relay_events_dead_lettered_total',
    help: 'Events a consumer could not apply and sent to the dead-letter topic.',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });

  readonly openSockets = new client.Gauge({
    name: 'relay_stream_sockets',
    help: 'Open WebSocket streams on this node.',
    registers: [this.registry],
  });

  readonly pushes = new client.Counter({
    name: 'relay_stream_pushes_total',
    help: 'Messages written to stream sockets, by source (backlog or live).',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly onlinePeers = new client.Gauge({
    name: 'relay_stream_online_peers',
    help: 'Distinct addresses with at least one open WebSocket stream on this node.',
    registers: [this.registry],
  });

  readonly deliveryDelay = new client.Histogram({
    name: 'relay_stream_delivery_delay_seconds',
    help: "From a message's acceptance to its frame written to a stream socket, by source (backlog or live).",
    labelNames: ['source'] as const,
    buckets: DELAY_BUCKETS,
    registers: [this.registry],
  });

  readonly projectionDelay = new client.Histogram({
    name: 'relay_projection_delay_seconds',
    help: "From an event's acceptance (occurred_at) to its row committed by a projection, by projection.",
    labelNames: ['projection'] as const,
    buckets: DELAY_BUCKETS,
    registers: [this.registry],
  });

  readonly consumerLag = new client.Gauge({
    name: 'relay_consumer_lag_records',
    help: "Records in a partition after the consumer group's committed offset, by consumer role, topic and partition.",
    labelNames: ['consumer', 'topic', 'partition'] as const,
    registers: [this.registry],
  });

  readonly consumerLagCheck = new client.Gauge({
    name: 'relay_consumer_lag_last_check_timestamp_seconds',
    help: 'When consumer lag was last read from Kafka, by consumer role.',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });

  readonly dbReads = new client.Counter({
    name: 'relay_db_reads_total',
    help: 'Mailbox and peer reads with a read replica configured, by where they ran (replica or primary) and why (caught_up, behind, down, error).',
    labelNames: ['target', 'reason'] as const,
    registers: [this.registry],
  });

  readonly replicaLag = new client.Gauge({
    name: 'relay_db_replica_lag_seconds',
    help: "How long the read replica has been missing rows the primary's read model held, by projection; no sample while the replica cannot be read.",
    // The label keeps the gauge without a sample until it is measured: an unlabelled gauge shows 0.
    labelNames: ['projection'] as const,
    registers: [this.registry],
  });

  readonly messagesExpired = new client.Counter({
    name: 'relay_messages_expired_total',
    help: 'MessageExpired events written for undelivered messages past their expires_at.',
    registers: [this.registry],
  });

  readonly rowsPurged = new client.Counter({
    name: 'relay_messages_purged_total',
    help: 'Settled message rows deleted from the read model.',
    registers: [this.registry],
  });

  readonly anchoredMessages = new client.Counter({
    name: 'relay_anchored_messages_total',
    help: 'Messages whose batch root was committed on chain.',
    registers: [this.registry],
  });

  readonly anchorDelay = new client.Histogram({
    name: 'relay_anchor_delay_seconds',
    help: 'From the oldest message of a batch accepted to the batch committed on chain.',
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });

  readonly lastAnchor = new client.Gauge({
    name: 'relay_anchor_last_success_timestamp_seconds',
    help: 'When the anchor role last recorded a batch committed on chain.',
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'relay_' });
  }

  /**
   * relay_dependency_up{dependency}: the /readyz checks, run when Prometheus scrapes, so an alert
   * sees readiness without probing /readyz itself. Once per registry.
   */
  observeReadiness(checks: Readonly<Record<string, Check>>): void {
    if (this.registry.getSingleMetric('relay_dependency_up')) return;
    new client.Gauge({
      name: 'relay_dependency_up',
      help: 'Whether a dependency answered its readiness check at scrape time (1) or not (0).',
      labelNames: ['dependency'] as const,
      registers: [this.registry],
      async collect() {
        const readiness = await checkReadiness(checks);
        for (const [dependency, result] of Object.entries(readiness.checks))
          this.set({ dependency }, result.status === 'up' ? 1 : 0);
      },
    });
  }

  /**
   * relay_tls_certificate_expiry_timestamp_seconds: the served certificate's notAfter, read from
   * the file at each scrape, so a renewed file shows even before the ingress restarts to load it.
   */
  observeCertificate(certFile: string): void {
    if (this.registry.getSingleMetric('relay_tls_certificate_expiry_timestamp_seconds')) return;
    new client.Gauge({
      name: 'relay_tls_certificate_expiry_timestamp_seconds',
      help: 'When the certificate in RELAY_TLS_CERT stops being valid (its notAfter), in seconds since the epoch.',
      // A gauge without labels always has a sample (0 after a reset): the label lets an
      // unreadable file show as no sample rather than as a certificate expired in 1970.
      labelNames: ['certificate'] as const,
      registers: [this.registry],
      async collect() {
        try {
          this.set(
            { certificate: 'ingress' },
            Date.parse(new X509Certificate(await readFile(certFile)).validTo) / 1000,
          );
        } catch {
          this.reset();
        }
      },
    });
  }
}
