import kafkajs from 'kafkajs';
import type { RelayConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;
export type KafkaClient = InstanceType<typeof Kafka>;

/** A kafkajs client whose log lines go through the relay's logger. */
export function createKafka(config: RelayConfig, log: Logger, clientSuffix = ''): KafkaClient {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${config.kafka.clientId}${clientSuffix ? `-${clientSuffix}` : ''}`,
    brokers: [...config.kafka.brokers],
    logLevel: config.logLevel === 'debug' ? KafkaLogLevel.INFO : KafkaLogLevel.WARN,
    retry: { initialRetryTime: 100, retries: 8 },
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...fields } = entry;
        const write = level <= KafkaLogLevel.ERROR ? kafkaLog.error : level === KafkaLogLevel.WARN ? kafkaLog.warn : kafkaLog.debug;
        write(String(message), fields);
      },
  });
}
