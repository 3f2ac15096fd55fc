import client from 'prom-client';

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

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'relay_' });
  }
}
