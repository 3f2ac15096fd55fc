import { readFileSync } from 'node:fs';
import kafkajs from 'kafkajs';
import type { RelayConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
// Patches kafkajs before any connection exists: see the module.
import './request-queue-fix.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;
export type KafkaClient = InstanceType<typeof Kafka>;
export type KafkaAdmin = ReturnType<KafkaClient['admin']>;

/** A kafkajs client whose log lines go through the relay's logger. */
export function createKafka(config: RelayConfig, log: Logger, clientSuffix = ''): KafkaClient {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${config.kafka.clientId}${clientSuffix ? `-${clientSuffix}` : ''}`,
    brokers: [...config.kafka.brokers],
    logLevel: config.logLevel === 'debug' ? KafkaLogLevel.INFO : KafkaLogLevel.WARN,
    retry: { initialRetryTime: 100, retries: 8 },
    ssl: config.kafkaSecurity.caFile
      ? { ca: [readFileSync(config.kafkaSecurity.caFile, 'utf8')] }
      : config.kafkaSecurity.ssl,
    ...(config.kafkaSecurity.sasl ? { sasl: { ...config.kafkaSecurity.sasl } as kafkajs.SASLOptions } : {}),
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...fields } = entry;
        // Retries are bounded on purpose: the ingress answers 503 rather than hold a request forever.
        if (String(message).startsWith('Limiting retries for the idempotent producer')) return;
        const at = level <= KafkaLogLevel.ERROR ? 'error' : level === KafkaLogLevel.WARN ? 'warn' : 'debug';
        kafkaLog[at](fields, String(message));
      },
  });
}
