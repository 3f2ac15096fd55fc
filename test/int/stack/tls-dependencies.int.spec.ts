import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chown, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeDevCerts, type DevCerts } from '../../../src/cli/dev-certs.js';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { createKafka } from '../../../src/kafka/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { createPool } from '../../../src/postgres/pool.js';
import { createRedis } from '../../../src/redis/client.js';
import { eventually, testConfig } from '../../helpers/context.js';
import { postgresProgram } from '../../helpers/private-postgres.js';
import { exited, freePort, stack } from '../../helpers/processes.js';

const run = promisify(execFile);

// The relay's own client factories (createKafka, createPool, createRedis), configured only
// through RELAY_* variables as docs/guides/security.md says, against servers of their own that
// accept TLS 1.3 only: Kafka with SASL/PLAIN over TLS, PostgreSQL with ssl=on, Redis on a TLS
// port. A client that trusts another CA is refused each time, so the certificate is checked.
describe('TLS to Kafka, PostgreSQL and Redis', () => {
  let dir: string;
  let certs: DevCerts;
  let otherCa: string;
  const log = createLogger('error', { test: 'tls-dependencies' });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-tls-'));
    certs = await makeDevCerts(join(dir, 'certs'));
    otherCa = (await makeDevCerts(join(dir, 'other'))).ca;
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('Kafka over SASL_SSL', () => {
    let broker: ChildProcess;
    let port: number;

    beforeAll(async () => {
      port = await freePort();
      const [internal, controller] = [await freePort(), await freePort()];
      const keystore = join(dir, 'kafka-keystore.pem');
      // A PEM keystore: the unencrypted PKCS #8 key, then the certificate chain.
      await writeFile(keystore, `${await readFile(certs.key, 'utf8')}\n${await readFile(certs.cert, 'utf8')}`);
      const properties = join(dir, 'kafka.properties');
      await writeFile(
        properties,
        [
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${controller}`,
          `listeners=SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${internal},CONTROLLER://127.0.0.1:${controller}`,
          `advertised.listeners=SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${internal}`,
          'listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
          'controller.listener.names=CONTROLLER',
          'inter.broker.listener.name=INTERNAL',
          'sasl.enabled.mechanisms=PLAIN',
          'listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_relay="relay-secret";',
          'ssl.keystore.type=PEM',
          `ssl.keystore.location=${keystore}`,
          'ssl.enabled.protocols=TLSv1.3',
          'ssl.protocol=TLSv1.3',
          `log.dirs=${join(dir, 'kafka-data')}`,
          'offsets.topic.replication.factor=1',
          'transaction.state.log.replication.factor=1',
          'transaction.state.log.min.isr=1',
          'group.initial.rebalance.delay.ms=0',
          '',
        ].join('\n'),
      );
      const clusterId = await stack(['kafka-tool', 'kafka.tools.StorageTool', 'random-uuid']);
      await stack(['kafka-tool', 'kafka.tools.StorageTool', 'format', '-t', clusterId.trim(), '-c', properties]);
      // Long-running, so spawned rather than run to completion like the calls above.
      broker = spawn(`${PROJECT_ROOT}infra/bin/stack`, ['kafka-tool', 'kafka.Kafka', properties], { stdio: 'ignore' });
    }, 120_000);

    afterAll(async () => {
      broker?.kill('SIGKILL');
      if (broker) await exited(broker);
    });

    const kafkaWith = (overrides: Record<string, string>) =>
      createKafka(
        testConfig('tls-kafka', {
          RELAY_KAFKA_BROKERS: `127.0.0.1:${port}`,
          RELAY_KAFKA_SSL: 'true',
          RELAY_KAFKA_SSL_CA: certs.ca,
          RELAY_KAFKA_SASL_MECHANISM: 'plain',
          RELAY_KAFKA_SASL_USERNAME: 'relay',
          RELAY_KAFKA_SASL_PASSWORD: 'relay-secret',
          ...overrides,
        }),
        log,
      );

    it('creates a topic, produces idempotently with acks all, and reads the offset back', async () => {
      const kafka = kafkaWith({});
      const admin = kafka.admin();
      await eventually(() => admin.connect().then(() => true), 60_000, 'the TLS broker to accept a client');
      const topic = `tls-${randomUUID()}`;
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(true);
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const [written] = await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'over TLS 1.3' }] });
      expect(written?.errorCode).toBe(0);
      expect(await admin.fetchTopicOffsets(topic)).toEqual([expect.objectContaining({ partition: 0, high: '1' })]);
      await producer.disconnect();
      await admin.disconnect();
    }, 90_000);

    it('refuses a wrong SASL password and a CA that did not sign the broker', async () => {
      const wrongPassword = kafkaWith({ RELAY_KAFKA_SASL_PASSWORD: 'not-the-secret' }).admin();
      await expect(wrongPassword.connect()).rejects.toThrow(/SASL PLAIN authentication failed|Authentication failed/i);
      const wrongCa = kafkaWith({ RELAY_KAFKA_SSL_CA: otherCa }).admin();
      await expect(wrongCa.connect()).rejects.toThrow(/certificate/i);
    }, 90_000);
  });

  describe('PostgreSQL with sslmode and a private CA', () => {
    let port: number;
    let home: string;
    let data: string;
    // initdb and postgres refuse to run as root: as root, run them as the postgres user.
    const asOwner = async (name: 'initdb' | 'pg_ctl', args: string[]) => {
      const command = await postgresProgram(name);
      return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args);
    };

    beforeAll(async () => {
      port = await freePort();
      // Its own directory (the shared one is private to this user), owned by the server's user.
      home = await mkdtemp(join(tmpdir(), 'relay-tls-pg-'));
      data = join(home, 'data');
      const owner = process.getuid?.() === 0 ? (await run('id', ['-u', 'postgres'])).stdout.trim() : undefined;
      if (owner) await chown(home, Number(owner), Number(owner));
      await asOwner('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-N']);
      for (const [from, to] of [
        [certs.cert, 'server.crt'],
        [certs.key, 'server.key'],
      ] as const) {
        await copyFile(from, join(data, to));
        if (owner) await chown(join(data, to), Number(owner), Number(owner));
        await run('chmod', ['600', join(data, to)]);
      }
      const options = `-p ${port} -k ${home} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_min_protocol_version=TLSv1.3 -c fsync=off`;
      await asOwner('pg_ctl', ['-D', data, '-o', options, '-l', join(home, 'postgres.log'), '-w', 'start']);
    }, 120_000);

    afterAll(async () => {
      if (data) await asOwner('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      if (home) await rm(home, { recursive: true, force: true });
    });

    it('connects over TLS 1.3 with RELAY_DATABASE_SSL_CA, and refuses a CA that did not sign the server', async () => {
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      const pool = createPool(testConfig('tls-pg', { RELAY_DATABASE_URL: url, RELAY_DATABASE_SSL_CA: certs.ca }));
      const { rows } = await pool.query<{ ssl: boolean; version: string }>(
        'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      expect(rows).toEqual([{ ssl: true, version: 'TLSv1.3' }]);
      await pool.end();

      const wrongCa = createPool(testConfig('tls-pg', { RELAY_DATABASE_URL: url, RELAY_DATABASE_SSL_CA: otherCa }));
      await expect(wrongCa.query('SELECT 1')).rejects.toThrow(/certificate/i);
      await wrongCa.end();
    }, 60_000);
  });

  describe('Redis on a TLS port (rediss://)', () => {
    let server: ChildProcess;
    let port: number;

    beforeAll(async () => {
      port = await freePort();
      server = spawn(
        'redis-server',
        [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          certs.cert,
          '--tls-key-file',
          certs.key,
          '--tls-ca-cert-file',
          certs.ca,
          '--tls-auth-clients',
          'no',
          '--tls-protocols',
          'TLSv1.3',
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
    });

    afterAll(async () => {
      server?.kill('SIGKILL');
      if (server) await exited(server);
    });

    it('answers over TLS 1.3 with RELAY_REDIS_TLS_CA, and refuses a CA that did not sign the server', async () => {
      const url = `rediss://127.0.0.1:${port}`;
      const redis = createRedis(testConfig('tls-redis', { RELAY_REDIS_URL: url, RELAY_REDIS_TLS_CA: certs.ca }));
      expect(await eventually(() => redis.ping(), 20_000, 'Redis over TLS')).toBe('PONG');
      const socket = (redis as unknown as { stream: { getProtocol(): string | null } }).stream;
      expect(socket.getProtocol()).toBe('TLSv1.3');
      redis.disconnect();

      const wrongCa = createRedis(testConfig('tls-redis', { RELAY_REDIS_URL: url, RELAY_REDIS_TLS_CA: otherCa }));
      const failure = new Promise<Error>((resolve) => wrongCa.once('error', resolve));
      expect((await failure).message).toMatch(/certificate/i);
      wrongCa.disconnect();
    }, 60_000);
  });
});
