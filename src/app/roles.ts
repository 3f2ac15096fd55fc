import { SignatureVerifier } from '../crypto/signatures.js';
import { ApiKeyStore } from '../ingress/api-keys.js';
import { AuthFailureLimit, mailboxGuard, streamGuard } from '../ingress/auth-guards.js';
import { RateLimiter } from '../ingress/rate-limit.js';
import { TokenService } from '../ingress/tokens.js';
import { createApp } from '../ingress/app.js';
import { IdempotencyStore } from '../ingress/idempotency.js';
import { IngressService } from '../ingress/ingress-service.js';
import { MailboxReader } from '../ingress/mailbox-reader.js';
import { MessageRelay } from '../ingress/message-relay.js';
import { PeerDirectory } from '../ingress/peer-directory.js';
import { StreamHub } from '../ingress/stream-hub.js';
import { BatchingProducer } from '../kafka/batching-producer.js';
import { LogEnds } from '../kafka/log-ends.js';
import { ReadConsistency } from '../ingress/read-consistency.js';
import { CheckpointWatch } from '../projections/checkpoint-watch.js';
import { ReplicaReads } from '../projections/replica-reads.js';
import { createClient } from '../postgres/pool.js';
import { ConsumerService } from '../kafka/consumer-service.js';
import { DEFAULT_EXPIRY_OPTIONS, ExpiryService } from '../expiry/expiry-service.js';
import { EventPublisher } from '../kafka/event-publisher.js';
import type { Resources } from './resources.js';
import { stopInOrder, type Service } from '../lifecycle/service.js';
import { presenceProjection } from '../presence/presence-projection.js';
import { PresenceStore } from '../presence/presence-store.js';
import { postgresProjector } from '../projections/postgres-projector.js';
import { router, streamHolders, type Holders } from '../routing/router.js';
import { AnchorService } from '../anchoring/anchor-service.js';
import { ProofReader } from '../anchoring/proof-reader.js';
import { UsageError } from '../errors/usage-error.js';
import { observabilityServices } from './role-observability.js';

export const ROLES = ['ingress', 'projector', 'presence', 'router', 'anchor', 'expiry', 'all'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);

/** The ingress: HTTP API and WebSocket stream, with the producer they share. */
export function ingressServices(resources: Resources): { services: Service[]; ingress: IngressService } {
  const { config, log, kafka, codec, topics, pool, redis, metrics } = resources;
  const producer = new BatchingProducer(
    kafka,
    [topics.mailbox, topics.peers],
    config.producer,
    log.child({ service: 'producer' }),
    metrics,
  );
  const events = new EventPublisher(producer, codec, topics);
  const watch = new CheckpointWatch({
    pool,
    connect: () => createClient(config),
    schema: config.postgres.schema,
    log: log.child({ service: 'checkpoint-watch' }),
  });
  const consistency = new ReadConsistency({
    watch,
    producer,
    logEnds: new LogEnds(() => resources.kafkaAdmin()),
    topics,
    waitMs: config.reads.waitMs,
  });
  const verifier = new SignatureVerifier(Date.now, { maxFutureSeconds: config.auth.signatureFutureSeconds });
  const presence = new PresenceStore(redis, config.redis.keyPrefix, config.presence.ttlSeconds);
  const limiter = new RateLimiter(redis, config.redis.keyPrefix);
  const apiKeys = new ApiKeyStore(pool);
  const tokens = new TokenService({
    pool,
    redis,
    redisPrefix: config.redis.keyPrefix,
    verifier,
    ttlSeconds: config.auth.tokenTtlSeconds,
  });
  const required = config.auth.required;
  if (!required)
    log.warn('RELAY_AUTH=off: no API keys or tokens are checked; for development and trusted networks only');
  const authorizeMailbox = mailboxGuard(tokens, required);
  const failures = new AuthFailureLimit(limiter, config.auth.failureRate, config.auth.trustedProxies);
  const authorizeStream = streamGuard(apiKeys, tokens, required, failures);
  const relay = new MessageRelay({
    verifier,
    events,
    idempotency: new IdempotencyStore(redis, config.redis.keyPrefix),
    pool,
    redis,
    redisPrefix: config.redis.keyPrefix,
    nodeId: config.nodeId,
    messageTtlSeconds: config.expiry.messageTtlSeconds,
    senderLimit: { limiter, rate: config.auth.senderRate },
    recipientLimit: { limiter, rate: config.auth.recipientRate, overrides: config.auth.recipientOverrides },
    consistency,
    log: log.child({ service: 'relay' }),
  });
  const replica = ReplicaReads.open(config, { primary: pool, metrics, log: log.child({ service: 'replica-reads' }) });
  const peers = new PeerDirectory({ verifier, events, pool, presence, consistency, replica });
  const mailbox = new MailboxReader(pool, replica);
  const hub = new StreamHub({
    nodeId: config.nodeId,
    presence,
    subscriber: redis.duplicate(),
    relay,
    mailbox,
    events,
    consistency,
    limits: config.streams,
    ttlSeconds: config.presence.ttlSeconds,
    authorize: authorizeStream,
    log: log.child({ service: 'stream' }),
    metrics,
  });
  const app = createApp(resources, {
    consistency,
    relay,
    peers,
    mailbox,
    tokens,
    authorizeMailbox,
    proofs: new ProofReader(pool),
    gate: required ? { apiKeys, limiter, keyRate: config.auth.keyRate, failures } : undefined,
  });
  const ingress = new IngressService(app, {
    host: config.http.host,
    port: config.http.port,
    log,
    limits: config.http,
    tls: config.tls,
    onServer: (server) => hub.attach(server),
    beforeListen: () => producer.whenReady(),
  });
  // Stop accepting and close the streams first; the producer flushes their last events after them.
  return {
    services: [
      stopInOrder(
        'ingress node',
        [
          [ingress, hub],
          [producer, watch, ...(replica ? [replica] : [])],
        ],
        log,
      ),
    ],
    ingress,
  };
}

/** One consuming role: the Postgres projector, the Redis presence projection, or the router. */
export function consumerService(
  resources: Resources,
  role: 'projector' | 'presence' | 'router',
): ConsumerService | ConsumerService<Holders> {
  const { config, kafka, codec, topics, pool, redis, metrics, log } = resources;
  const presence = new PresenceStore(redis, config.redis.keyPrefix, config.presence.ttlSeconds);
  const common = { name: role, groupId: `${config.kafka.groupPrefix}.${role}`, dlqTopic: topics.dlq };
  const roleLog = log.child({ service: role });
  // The projections wait up to 50 ms for 1 MiB of records per fetch. Each partition's share of a
  // fetch is one transaction whose cost barely depends on its size, so under load fewer, bigger
  // batches (at 64 KiB a fetch held about 10 messages per partition of six) cost less per
  // message; the wait stays the 50 ms a read-your-writes read already allows for, and idle there
  // are fewer empty fetches than the router's.
  const gather = { minBytes: 1024 * 1024, maxWaitMs: 50 };
  switch (role) {
    case 'projector':
      return new ConsumerService(
        kafka,
        codec,
        { ...common, topics: [topics.mailbox, topics.peers, topics.anchors], fetch: gather },
        postgresProjector(pool, metrics),
        roleLog,
        metrics,
      );
    case 'presence':
      return new ConsumerService(
        kafka,
        codec,
        { ...common, topics: [topics.peers], fetch: gather },
        presenceProjection(presence, metrics),
        roleLog,
        metrics,
      );
    case 'router':
      return new ConsumerService(
        kafka,
        codec,
        { ...common, topics: [topics.mailbox], fromBeginning: false, wantedKeys: streamHolders(presence) },
        router(presence, redis),
        roleLog,
        metrics,
      );
  }
}

/** The expiry role: MessageExpired for undelivered messages past expires_at, and the purge of settled rows. */
export function expiryServices(resources: Resources): Service[] {
  const { config, log, kafka, codec, topics, pool, metrics } = resources;
  const producer = new BatchingProducer(
    kafka,
    [topics.mailbox],
    config.producer,
    log.child({ service: 'expiry-producer' }),
    metrics,
  );
  const watch = new CheckpointWatch({
    pool,
    connect: () => createClient(config),
    schema: config.postgres.schema,
    log: log.child({ service: 'checkpoint-watch' }),
  });
  const expiry = new ExpiryService(
    {
      pool,
      events: new EventPublisher(producer, codec, topics),
      logEnds: new LogEnds(() => resources.kafkaAdmin()),
      watch,
      mailboxTopic: topics.mailbox,
      schema: config.postgres.schema,
      log: log.child({ service: 'expiry' }),
      ready: () => producer.whenReady(),
      metrics,
    },
    { ...DEFAULT_EXPIRY_OPTIONS, purgeAfterSeconds: config.expiry.purgeAfterSeconds },
  );
  // The expirer stops first; its producer flushes what it wrote after it.
  return [stopInOrder('expiry node', [[expiry], [producer, watch]], log)];
}

/**
 * The anchor role (src/anchoring/anchor-service.ts). `all` includes it only when anchoring is
 * configured (RELAY_ANCHOR_RPC_URL); `relay anchor` without it is a usage error.
 */
export function anchorServices(resources: Resources, required = false): Service[] {
  const { config, kafka, codec, topics, pool, log, metrics } = resources;
  if (!config.anchor) {
    if (required)
      throw new UsageError('relay anchor needs RELAY_ANCHOR_RPC_URL and a signer key (docs/guides/anchoring.md)');
    return [];
  }
  const options = {
    groupId: `${config.kafka.groupPrefix}.anchor`,
    mailboxTopic: topics.mailbox,
    anchorsTopic: topics.anchors,
    config: config.anchor,
  };
  return [new AnchorService(kafka, codec, pool, options, log.child({ service: 'anchor' }), metrics)];
}

/** The services one role runs, with what makes it observable (src/app/role-observability.ts); `all` runs every role in one process. */
export function servicesFor(role: Role, resources: Resources): Service[] {
  return [...roleServices(role, resources), ...observabilityServices(role, resources)];
}

function roleServices(role: Role, resources: Resources): Service[] {
  switch (role) {
    case 'ingress':
      return ingressServices(resources).services;
    case 'projector':
    case 'presence':
    case 'router':
      return [consumerService(resources, role)];
    case 'expiry':
      return expiryServices(resources);
    case 'anchor':
      return anchorServices(resources, true);
    case 'all':
      return [
        ...ingressServices(resources).services,
        consumerService(resources, 'projector'),
        consumerService(resources, 'presence'),
        consumerService(resources, 'router'),
        ...anchorServices(resources),
        ...expiryServices(resources),
      ];
  }
}
