import { isIP } from 'node:net';
import { hostname } from 'node:os';

/**
 * The one typed, validated, frozen configuration object, and the only reader of `process.env`.
 * Every variable is declared once in `VARIABLES` below: its parser, default and meaning. The
 * reference page docs/reference/configuration.md and the docker-compose test read the same table.
 */

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Parser<T> = (raw: string, name: string) => T;

interface Variable<T> {
  readonly parse: Parser<T>;
  readonly default: string;
  readonly help: string;
}

const fail = (message: string): never => {
  throw new Error(message);
};

const text: Parser<string> = (raw, name) => (raw.trim() === '' ? fail(`${name} must not be empty`) : raw.trim());
const optionalText: Parser<string> = (raw) => raw.trim();

const integer =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    const value = Number(raw);
    return Number.isInteger(value) && value >= min && value <= max
      ? value
      : fail(`${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  };

const hostPorts: Parser<string[]> = (raw, name) => {
  const list = raw.split(',').map((part) => part.trim());
  const valid = list.every((part) => /^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(part));
  return valid && list.length > 0 ? list : fail(`${name} must be host:port[,host:port], not "${raw}"`);
};

const url =
  (...protocols: string[]): Parser<string> =>
  (raw, name) => {
    try {
      const parsed = new URL(raw);
      if (protocols.includes(parsed.protocol)) return raw.replace(/\/+$/, '');
    } catch {
      // reported below
    }
    return fail(`${name} must be a ${protocols.join(' or ')}// URL, not "${raw}"`);
  };

const optionalUrl =
  (...protocols: string[]): Parser<string> =>
  (raw, name) =>
    raw.trim() === '' ? '' : url(...protocols)(raw.trim(), name);

const identifier: Parser<string> = (raw, name) =>
  /^[a-z_][a-z0-9_]{0,62}$/.test(raw) ? raw : fail(`${name} must be a lower-case SQL identifier, not "${raw}"`);

const topicPrefix: Parser<string> = (raw, name) =>
  /^[A-Za-z0-9._-]*$/.test(raw) ? raw : fail(`${name} may hold only letters, digits, ".", "_" and "-", not "${raw}"`);

const oneOf =
  <T extends string>(...choices: T[]): Parser<T> =>
  (raw, name) =>
    (choices as string[]).includes(raw)
      ? (raw as T)
      : fail(`${name} must be one of ${choices.join(', ')}, not "${raw}"`);

/** `ADDRESS=RATE[/BURST]` entries, comma-separated; the burst defaults to five seconds of the rate. */
const rateOverrides: Parser<ReadonlyMap<string, { perSecond: number; burst: number }>> = (raw, name) => {
  const entries = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  return new Map(
    entries.map((entry) => {
      const match = /^([A-Za-z0-9_-]{43})=(\d{1,9})(?:\/(\d{1,9}))?$/.exec(entry);
      const perSecond = Number(match?.[2]);
      if (!match || perSecond < 1)
        return fail(`${name} must be ADDRESS=RATE[/BURST] entries separated by commas, not "${entry}"`);
      return [match[1] as string, { perSecond, burst: match[3] ? Math.max(1, Number(match[3])) : perSecond * 5 }];
    }),
  );
};

/** Comma-separated IP addresses and CIDR ranges (203.0.113.0/24, 2001:db8::/32); empty for none. */
const ipRanges: Parser<string[]> = (raw, name) =>
  raw.trim() === ''
    ? []
    : raw.split(',').map((part) => {
        const [address = '', prefix, extra] = part.trim().split('/');
        const family = isIP(address);
        const bits = family === 4 ? 32 : 128;
        const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
        return family !== 0 && prefixOk && extra === undefined
          ? part.trim()
          : fail(`${name} must be IP addresses or CIDR ranges separated by commas, not "${part.trim()}"`);
      });

const flag: Parser<boolean> = (raw, name) =>
  raw === 'true' || raw === '1'
    ? true
    : raw === 'false' || raw === '0' || raw === ''
      ? false
      : fail(`${name} must be true or false, not "${raw}"`);

const logLevel: Parser<LogLevel> = (raw, name) =>
  (LOG_LEVELS as readonly string[]).includes(raw)
    ? (raw as LogLevel)
    : fail(`${name} must be one of ${LOG_LEVELS.join(', ')}, not "${raw}"`);

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const variable = <T>(parse: Parser<T>, defaultValue: string, help: string): Variable<T> => ({
  parse,
  default: defaultValue,
  help,
});

/** Every environment variable the relay reads, with its default and meaning. */
export const VARIABLES = {
  RELAY_NODE_ID: variable(
    optionalText,
    '',
    'Name of this node; pushes to its sockets go to a channel by this name (default: host name and pid).',
  ),
  RELAY_HTTP_HOST: variable(text, '0.0.0.0', 'Address the ingress listens on.'),
  RELAY_HTTP_PORT: variable(integer(0, 65535), '8080', 'Port the ingress listens on (0: any free port).'),
  RELAY_HTTP_HEADERS_TIMEOUT_MS: variable(
    integer(1000, 600_000),
    '20000',
    "A client must send a request's headers within this long, or gets 408 and the connection is closed.",
  ),
  RELAY_HTTP_REQUEST_TIMEOUT_MS: variable(
    integer(1000, 3_600_000),
    '60000',
    'A client must send a whole request, headers and body, within this long, or gets 408; at least RELAY_HTTP_HEADERS_TIMEOUT_MS.',
  ),
  RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS: variable(
    integer(1000, 600_000),
    '10000',
    'An idle keep-alive connection is closed after this long; less than RELAY_HTTP_HEADERS_TIMEOUT_MS. A proxy in front must drop idle upstream connections sooner.',
  ),
  RELAY_HTTP_MAX_CONNECTIONS: variable(
    integer(1, 1_000_000),
    '10000',
    'Open connections per listener, WebSocket streams included; further connections are closed as they arrive.',
  ),
  RELAY_KAFKA_BROKERS: variable(hostPorts, '127.0.0.1:9092', 'Kafka bootstrap brokers, host:port[,host:port].'),
  RELAY_KAFKA_CLIENT_ID: variable(text, 'relay', 'Kafka client id prefix.'),
  RELAY_TOPIC_PREFIX: variable(topicPrefix, '', 'Prefix for every topic name (isolates tests and tenants).'),
  RELAY_TOPIC_PARTITIONS: variable(integer(1, 10_000), '6', 'Partitions of the topics the relay creates.'),
  RELAY_TOPIC_REPLICATION: variable(integer(1, 32), '1', 'Replication factor of the topics the relay creates.'),
  RELAY_SCHEMA_REGISTRY_URL: variable(
    url('http:', 'https:'),
    'http://127.0.0.1:8081/apis/ccompat/v7',
    'Base URL of the Confluent-compatible schema registry API.',
  ),
  RELAY_DATABASE_URL: variable(
    url('postgres:', 'postgresql:'),
    'postgres://postgres@127.0.0.1:5432/relay',
    'PostgreSQL connection URL.',
  ),
  RELAY_DATABASE_SCHEMA: variable(identifier, 'public', 'PostgreSQL schema that holds the read model.'),
  RELAY_DATABASE_POOL: variable(integer(1, 200), '10', 'PostgreSQL connections per process.'),
  RELAY_DATABASE_READ_URL: variable(
    optionalUrl('postgres:', 'postgresql:'),
    '',
    'URL of a streaming replica of RELAY_DATABASE_URL that serves mailbox and peer reads it has caught up with (empty: every read on the primary).',
  ),
  RELAY_REDIS_URL: variable(url('redis:', 'rediss:'), 'redis://127.0.0.1:6379', 'Redis connection URL.'),
  RELAY_REDIS_PREFIX: variable(optionalText, 'relay:', 'Prefix of every Redis key and channel.'),
  RELAY_CONSUMER_GROUP_PREFIX: variable(text, 'relay', 'Prefix of the consumer group names (<prefix>.projector, ...).'),
  RELAY_PRODUCER_BATCH_MAX: variable(integer(1, 100_000), '2000', 'Most records in one produce request.'),
  RELAY_PRODUCER_LINGER_MS: variable(
    integer(0, 1000),
    '2',
    'How long a produce call waits for others to share its request.',
  ),
  RELAY_PRODUCER_QUEUE_MAX: variable(
    integer(1, 10_000_000),
    '50000',
    'Records waiting to be produced before the ingress sheds load with 503.',
  ),
  RELAY_PRODUCER_COMPRESSION: variable(
    oneOf('none', 'gzip'),
    'none',
    'Codec of the record batches the relay produces: none or gzip (costs CPU in the ingress and every consumer).',
  ),
  RELAY_PRESENCE_TTL_SECONDS: variable(
    integer(5, 3600),
    '60',
    'A peer whose node stops heartbeating is offline after this long.',
  ),
  RELAY_MESSAGE_TTL_SECONDS: variable(
    integer(1, 315_360_000),
    '2592000',
    'How long an undelivered message is offered before it expires (default 30 days); a sender may ask for less.',
  ),
  RELAY_PURGE_AFTER_SECONDS: variable(
    integer(0, 315_360_000),
    '604800',
    'Delivered and expired messages are deleted from PostgreSQL this long after their delivery or expiry.',
  ),
  RELAY_MAILBOX_RETENTION_MS: variable(
    integer(-1, 315_360_000_000),
    '3888000000',
    'retention.ms that relay setup sets on the mailbox and dead-letter topics (-1: keep forever).',
  ),
  RELAY_PEERS_RETENTION_MS: variable(
    integer(-1, 315_360_000_000),
    '-1',
    'retention.ms that relay setup sets on the peers topic (-1: keep forever).',
  ),
  RELAY_SHUTDOWN_GRACE_MS: variable(
    integer(0, 600_000),
    '10000',
    'On SIGTERM or SIGINT, how long a role may take to stop in order (stop accepting, close streams, flush records, commit) before it exits anyway.',
  ),
  RELAY_LOG_LEVEL: variable(logLevel, 'info', 'Least severe log level written: debug, info, warn or error.'),
  RELAY_TLS_CERT: variable(
    optionalText,
    '',
    'PEM certificate chain file: with RELAY_TLS_KEY, the ingress serves HTTPS and WSS with TLS 1.3 only.',
  ),
  RELAY_TLS_KEY: variable(optionalText, '', 'PEM private key file for RELAY_TLS_CERT.'),
  RELAY_LOCAL_HTTP_PORT: variable(
    integer(0, 65535),
    '0',
    'With TLS on, also serve plain HTTP on 127.0.0.1 at this port for local probes and tools (0: off).',
  ),
  RELAY_METRICS_PORT: variable(
    integer(0, 65535),
    '0',
    'Serve /metrics, /healthz and /readyz on RELAY_HTTP_HOST at this port, for roles without an HTTP server of their own (0: off).',
  ),
  RELAY_AUTH: variable(
    oneOf('required', 'off'),
    'required',
    'required: every /api/v1 call needs an API key and mailbox access a bearer token; off: neither (development and trusted networks only).',
  ),
  RELAY_TOKEN_TTL_SECONDS: variable(
    integer(60, 900),
    '900',
    'Lifetime of the address-bound access tokens (at most 15 minutes).',
  ),
  RELAY_RATE_KEY_PER_SECOND: variable(
    integer(1, 10_000_000),
    '500',
    'Sustained requests per second allowed per API key.',
  ),
  RELAY_RATE_KEY_BURST: variable(
    integer(1, 10_000_000),
    '1000',
    'Requests an API key may make at once above its rate.',
  ),
  RELAY_RATE_AUTH_FAILURES_PER_MINUTE: variable(
    integer(1, 1_000_000),
    '30',
    'Sustained failed authentications (unknown API key, bad token, failed token proof) per minute allowed per client address.',
  ),
  RELAY_RATE_AUTH_FAILURES_BURST: variable(
    integer(1, 1_000_000),
    '20',
    'Failed authentications a client address may make at once; over that, its calls are answered 429 until Retry-After.',
  ),
  RELAY_SIGNATURE_FUTURE_SECONDS: variable(
    integer(0, 300),
    '60',
    "How far ahead of the server's clock a signed iat may be; one more than 300 s old is refused regardless.",
  ),
  RELAY_TRUSTED_PROXIES: variable(
    ipRanges,
    '',
    'Proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names the client address for the failed-authentication budget (empty: the TCP peer is the client).',
  ),
  RELAY_RATE_SENDER_PER_SECOND: variable(
    integer(1, 1_000_000),
    '200',
    'Sustained messages per second allowed per sender address.',
  ),
  RELAY_RATE_SENDER_BURST: variable(
    integer(1, 1_000_000),
    '1000',
    'Messages a sender may send at once above its rate.',
  ),
  RELAY_RATE_RECIPIENT_PER_SECOND: variable(
    integer(1, 1_000_000),
    '500',
    'Sustained messages per second allowed per recipient address.',
  ),
  RELAY_RATE_RECIPIENT_BURST: variable(
    integer(1, 1_000_000),
    '5000',
    'Messages a recipient may receive at once above its rate.',
  ),
  RELAY_RATE_RECIPIENT_OVERRIDES: variable(
    rateOverrides,
    '',
    'Higher rates for known busy recipients (bots, services): ADDRESS=RATE[/BURST], comma-separated.',
  ),
  RELAY_READ_WAIT_MS: variable(
    integer(0, 30_000),
    '2000',
    "How long a read waits for the read model to apply the writes it follows (its consistency token, and this node's last write to the address).",
  ),
  RELAY_STREAMS_PER_ADDRESS: variable(integer(1, 1000), '8', 'Open WebSocket streams allowed per address on one node.'),
  RELAY_STREAM_QUEUE_MAX: variable(
    integer(1, 100_000),
    '1000',
    'Messages a stream may have waiting for a socket that does not read before it is closed as too slow.',
  ),
  RELAY_STREAM_FRAMES_PER_SECOND: variable(
    integer(1, 100_000),
    '200',
    'Frames per second a stream may send; more are refused and a stream that keeps on is closed.',
  ),
  RELAY_KAFKA_SSL: variable(flag, 'false', 'Connect to Kafka over TLS.'),
  RELAY_KAFKA_SSL_CA: variable(
    optionalText,
    '',
    "PEM file of the CA that signed the brokers' certificates (default: the system CAs).",
  ),
  RELAY_KAFKA_SASL_MECHANISM: variable(
    oneOf('', 'plain', 'scram-sha-256', 'scram-sha-512'),
    '',
    'SASL mechanism for Kafka: plain, scram-sha-256 or scram-sha-512 (empty: none).',
  ),
  RELAY_KAFKA_SASL_USERNAME: variable(optionalText, '', 'SASL user name for Kafka.'),
  RELAY_KAFKA_SASL_PASSWORD: variable(optionalText, '', 'SASL password for Kafka.'),
  RELAY_DATABASE_SSL_CA: variable(
    optionalText,
    '',
    'PEM file of the CA for PostgreSQL TLS; TLS itself is chosen by sslmode in RELAY_DATABASE_URL.',
  ),
  RELAY_REDIS_TLS_CA: variable(optionalText, '', 'PEM file of the CA for Redis TLS (use a rediss:// URL).'),
  RELAY_ANCHOR_RPC_URL: variable(
    optionalUrl('http:', 'https:'),
    '',
    'JSON-RPC URL of the EVM chain that anchors message digests (empty: no anchoring).',
  ),
  RELAY_ANCHOR_CHAIN_ID: variable(
    integer(1, 2 ** 53 - 1),
    '31337',
    'Chain id the RPC endpoint must report; anchoring refuses to start on another chain.',
  ),
  RELAY_ANCHOR_PRIVATE_KEY: variable(
    optionalText,
    '',
    'Hex private key of the anchoring signer (or use RELAY_ANCHOR_KEY_FILE).',
  ),
  RELAY_ANCHOR_KEY_FILE: variable(optionalText, '', 'File holding the hex private key of the anchoring signer.'),
  RELAY_ANCHOR_CONTRACT: variable(
    optionalText,
    '',
    'Address of a deployed RelayAnchor contract (empty: relay setup deploys one and records it).',
  ),
  RELAY_ANCHOR_INTERVAL_SECONDS: variable(
    integer(1, 86_400),
    '10',
    'A batch is anchored at most this long after its first message.',
  ),
  RELAY_ANCHOR_MAX_MESSAGES: variable(
    integer(1, 10_000),
    '10000',
    'A batch is anchored as soon as it holds this many messages.',
  ),
  RELAY_ANCHOR_CONFIRMATIONS: variable(
    integer(1, 1000),
    '2',
    'Blocks (the anchoring one included) before an anchor is recorded.',
  ),
  RELAY_ANCHOR_MAX_FEE_GWEI: variable(
    integer(1, 1_000_000),
    '200',
    'Most the signer pays per unit of gas (EIP-1559 max fee), in gwei.',
  ),
  RELAY_ANCHOR_REPLACE_AFTER_SECONDS: variable(
    integer(5, 3600),
    '60',
    'An anchoring transaction not mined after this long is replaced (same nonce, higher fees).',
  ),
} as const;

export type VariableName = keyof typeof VARIABLES;

export interface RelayConfig {
  readonly nodeId: string;
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly maxConnections: number;
  };
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly topicPrefix: string;
    readonly partitions: number;
    readonly replicationFactor: number;
    readonly groupPrefix: string;
  };
  readonly registry: { readonly url: string };
  /** `readUrl`: a streaming replica for reads ('' for none). */
  readonly postgres: {
    readonly url: string;
    readonly schema: string;
    readonly poolSize: number;
    readonly readUrl: string;
  };
  readonly redis: { readonly url: string; readonly keyPrefix: string };
  readonly producer: {
    readonly maxBatch: number;
    readonly lingerMs: number;
    readonly maxQueue: number;
    readonly compression: 'gzip' | 'none';
  };
  readonly presence: { readonly ttlSeconds: number };
  readonly expiry: { readonly messageTtlSeconds: number; readonly purgeAfterSeconds: number };
  /** retention.ms of the topics, -1 for no time limit. */
  readonly retention: { readonly mailboxMs: number; readonly peersMs: number };
  readonly logLevel: LogLevel;
  readonly shutdownGraceMs: number;
  /** The metrics listener's port (RELAY_METRICS_PORT); 0 when there is none. */
  readonly metricsPort: number;
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly localHttpPort: number } | undefined;
  readonly auth: {
    readonly required: boolean;
    readonly tokenTtlSeconds: number;
    readonly keyRate: { readonly perSecond: number; readonly burst: number };
    readonly senderRate: { readonly perSecond: number; readonly burst: number };
    readonly recipientRate: { readonly perSecond: number; readonly burst: number };
    readonly recipientOverrides: ReadonlyMap<string, { readonly perSecond: number; readonly burst: number }>;
    /** Failed authentications per client address. */
    readonly failureRate: { readonly perSecond: number; readonly burst: number };
    readonly signatureFutureSeconds: number;
    /** Proxies whose X-Forwarded-For is believed when finding a client's address. */
    readonly trustedProxies: readonly string[];
  };
  readonly reads: { readonly waitMs: number };
  readonly streams: { readonly perAddress: number; readonly framesPerSecond: number; readonly queueMax: number };
  readonly kafkaSecurity: {
    readonly ssl: boolean;
    readonly caFile: string;
    readonly sasl:
      | {
          readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
          readonly username: string;
          readonly password: string;
        }
      | undefined;
  };
  readonly databaseCaFile: string;
  readonly redisCaFile: string;
  /** Anchoring on an EVM chain; undefined when RELAY_ANCHOR_RPC_URL is empty. */
  readonly anchor: AnchorConfig | undefined;
}

export interface AnchorConfig {
  readonly rpcUrl: string;
  readonly chainId: number;
  readonly privateKey: string;
  readonly keyFile: string;
  readonly contract: string;
  readonly intervalSeconds: number;
  readonly maxMessages: number;
  readonly confirmations: number;
  readonly maxFeeGwei: number;
  readonly replaceAfterSeconds: number;
}

type Values = { [K in VariableName]: ReturnType<(typeof VARIABLES)[K]['parse']> };

const deepFreeze = <T>(value: T): T => {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
};

/**
 * Reads and validates the environment. Every problem is reported at once, each in a sentence that
 * names the variable and what it must be.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): RelayConfig {
  const problems: string[] = [];
  const values: Partial<Record<VariableName, unknown>> = {};
  for (const [name, spec] of Object.entries(VARIABLES) as [VariableName, Variable<unknown>][]) {
    const raw = env[name] ?? spec.default;
    try {
      values[name] = spec.parse(raw, name);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  const v = values as Values;
  if ((v.RELAY_TLS_CERT === '') !== (v.RELAY_TLS_KEY === ''))
    problems.push('RELAY_TLS_CERT and RELAY_TLS_KEY must be set together');
  if (v.RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS >= v.RELAY_HTTP_HEADERS_TIMEOUT_MS) {
    problems.push('RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS must be less than RELAY_HTTP_HEADERS_TIMEOUT_MS');
  }
  if (v.RELAY_HTTP_REQUEST_TIMEOUT_MS < v.RELAY_HTTP_HEADERS_TIMEOUT_MS) {
    problems.push('RELAY_HTTP_REQUEST_TIMEOUT_MS must be at least RELAY_HTTP_HEADERS_TIMEOUT_MS');
  }
  if (v.RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS >= v.RELAY_HTTP_HEADERS_TIMEOUT_MS) {
    problems.push('RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS must be less than RELAY_HTTP_HEADERS_TIMEOUT_MS');
  }
  if (v.RELAY_HTTP_REQUEST_TIMEOUT_MS < v.RELAY_HTTP_HEADERS_TIMEOUT_MS) {
    problems.push('RELAY_HTTP_REQUEST_TIMEOUT_MS must be at least RELAY_HTTP_HEADERS_TIMEOUT_MS');
  }
  // The log must outlive every row the read model holds, or a rebuild would lose rows the live model still has.
  const rowLifetimeMs = (v.RELAY_MESSAGE_TTL_SECONDS + v.RELAY_PURGE_AFTER_SECONDS) * 1000;
  if (v.RELAY_MAILBOX_RETENTION_MS !== -1 && v.RELAY_MAILBOX_RETENTION_MS < rowLifetimeMs) {
    problems.push(
      `RELAY_MAILBOX_RETENTION_MS must be -1 or at least (RELAY_MESSAGE_TTL_SECONDS + RELAY_PURGE_AFTER_SECONDS) * 1000 = ${rowLifetimeMs}`,
    );
  }
  if (v.RELAY_ANCHOR_RPC_URL && !v.RELAY_ANCHOR_PRIVATE_KEY && !v.RELAY_ANCHOR_KEY_FILE) {
    problems.push('RELAY_ANCHOR_RPC_URL needs a signer: RELAY_ANCHOR_PRIVATE_KEY or RELAY_ANCHOR_KEY_FILE');
  }
  if (v.RELAY_ANCHOR_CONTRACT && !/^0x[0-9a-fA-F]{40}$/.test(v.RELAY_ANCHOR_CONTRACT)) {
    problems.push(`RELAY_ANCHOR_CONTRACT must be a 0x-prefixed 20-byte hex address, not "${v.RELAY_ANCHOR_CONTRACT}"`);
  }
  if (v.RELAY_KAFKA_SASL_MECHANISM && (!v.RELAY_KAFKA_SASL_USERNAME || !v.RELAY_KAFKA_SASL_PASSWORD)) {
    problems.push('RELAY_KAFKA_SASL_MECHANISM needs RELAY_KAFKA_SASL_USERNAME and RELAY_KAFKA_SASL_PASSWORD');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    nodeId: v.RELAY_NODE_ID || `${hostname()}-${process.pid}`,
    http: {
      host: v.RELAY_HTTP_HOST,
      port: v.RELAY_HTTP_PORT,
      headersTimeoutMs: v.RELAY_HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: v.RELAY_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: v.RELAY_HTTP_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: v.RELAY_HTTP_MAX_CONNECTIONS,
    },
    kafka: {
      brokers: v.RELAY_KAFKA_BROKERS,
      clientId: v.RELAY_KAFKA_CLIENT_ID,
      topicPrefix: v.RELAY_TOPIC_PREFIX,
      partitions: v.RELAY_TOPIC_PARTITIONS,
      replicationFactor: v.RELAY_TOPIC_REPLICATION,
      groupPrefix: v.RELAY_CONSUMER_GROUP_PREFIX,
    },
    registry: { url: v.RELAY_SCHEMA_REGISTRY_URL },
    postgres: {
      url: v.RELAY_DATABASE_URL,
      schema: v.RELAY_DATABASE_SCHEMA,
      poolSize: v.RELAY_DATABASE_POOL,
      readUrl: v.RELAY_DATABASE_READ_URL,
    },
    redis: { url: v.RELAY_REDIS_URL, keyPrefix: v.RELAY_REDIS_PREFIX },
    producer: {
      maxBatch: v.RELAY_PRODUCER_BATCH_MAX,
      lingerMs: v.RELAY_PRODUCER_LINGER_MS,
      maxQueue: v.RELAY_PRODUCER_QUEUE_MAX,
      compression: v.RELAY_PRODUCER_COMPRESSION,
    },
    presence: { ttlSeconds: v.RELAY_PRESENCE_TTL_SECONDS },
    expiry: { messageTtlSeconds: v.RELAY_MESSAGE_TTL_SECONDS, purgeAfterSeconds: v.RELAY_PURGE_AFTER_SECONDS },
    retention: { mailboxMs: v.RELAY_MAILBOX_RETENTION_MS, peersMs: v.RELAY_PEERS_RETENTION_MS },
    logLevel: v.RELAY_LOG_LEVEL,
    shutdownGraceMs: v.RELAY_SHUTDOWN_GRACE_MS,
    metricsPort: v.RELAY_METRICS_PORT,
    tls: v.RELAY_TLS_CERT
      ? { certFile: v.RELAY_TLS_CERT, keyFile: v.RELAY_TLS_KEY, localHttpPort: v.RELAY_LOCAL_HTTP_PORT }
      : undefined,
    auth: {
      required: v.RELAY_AUTH === 'required',
      tokenTtlSeconds: v.RELAY_TOKEN_TTL_SECONDS,
      keyRate: { perSecond: v.RELAY_RATE_KEY_PER_SECOND, burst: v.RELAY_RATE_KEY_BURST },
      senderRate: { perSecond: v.RELAY_RATE_SENDER_PER_SECOND, burst: v.RELAY_RATE_SENDER_BURST },
      recipientRate: { perSecond: v.RELAY_RATE_RECIPIENT_PER_SECOND, burst: v.RELAY_RATE_RECIPIENT_BURST },
      recipientOverrides: v.RELAY_RATE_RECIPIENT_OVERRIDES,
      failureRate: { perSecond: v.RELAY_RATE_AUTH_FAILURES_PER_MINUTE / 60, burst: v.RELAY_RATE_AUTH_FAILURES_BURST },
      signatureFutureSeconds: v.RELAY_SIGNATURE_FUTURE_SECONDS,
      trustedProxies: v.RELAY_TRUSTED_PROXIES,
    },
    reads: { waitMs: v.RELAY_READ_WAIT_MS },
    streams: {
      perAddress: v.RELAY_STREAMS_PER_ADDRESS,
      framesPerSecond: v.RELAY_STREAM_FRAMES_PER_SECOND,
      queueMax: v.RELAY_STREAM_QUEUE_MAX,
    },
    kafkaSecurity: {
      ssl: v.RELAY_KAFKA_SSL,
      caFile: v.RELAY_KAFKA_SSL_CA,
      sasl: v.RELAY_KAFKA_SASL_MECHANISM
        ? {
            mechanism: v.RELAY_KAFKA_SASL_MECHANISM,
            username: v.RELAY_KAFKA_SASL_USERNAME,
            password: v.RELAY_KAFKA_SASL_PASSWORD,
          }
        : undefined,
    },
    databaseCaFile: v.RELAY_DATABASE_SSL_CA,
    redisCaFile: v.RELAY_REDIS_TLS_CA,
    anchor: v.RELAY_ANCHOR_RPC_URL
      ? {
          rpcUrl: v.RELAY_ANCHOR_RPC_URL,
          chainId: v.RELAY_ANCHOR_CHAIN_ID,
          privateKey: v.RELAY_ANCHOR_PRIVATE_KEY,
          keyFile: v.RELAY_ANCHOR_KEY_FILE,
          contract: v.RELAY_ANCHOR_CONTRACT,
          intervalSeconds: v.RELAY_ANCHOR_INTERVAL_SECONDS,
          maxMessages: v.RELAY_ANCHOR_MAX_MESSAGES,
          confirmations: v.RELAY_ANCHOR_CONFIRMATIONS,
          maxFeeGwei: v.RELAY_ANCHOR_MAX_FEE_GWEI,
          replaceAfterSeconds: v.RELAY_ANCHOR_REPLACE_AFTER_SECONDS,
        }
      : undefined,
  });
}
