import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, loadConfig, VARIABLES } from '../../../src/config/config.js';
import { ROLES } from '../../../src/app/roles.js';

// There is no Docker engine here, so docker-compose.yml is checked the only way it can be: parsed,
// and held against the code it configures (the variable table, the validation, the CLI's roles).

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

type Scalar = string | number | boolean | null;
interface Healthcheck {
  test?: string | string[];
}
interface DependsOn {
  condition?: string;
}
interface Service {
  image?: string;
  build?: string | { context?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, Scalar> | string[];
  depends_on?: string[] | Record<string, DependsOn>;
  ports?: (string | number | { target?: number; published?: string | number })[];
  volumes?: (string | { source?: string; target?: string })[];
  healthcheck?: Healthcheck;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// Merge keys (`<<: *relay-env`) are YAML 1.1; Compose honours them, so the parser must too.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;
const nginxConf = read('infra/nginx/nginx.conf');
const postgresInit = read('infra/compose/postgres-init.sql');
const dockerfile = read('Dockerfile');

const RELAY_SERVICES = ['relay-setup', 'ingress-1', 'ingress-2', 'projector', 'presence', 'router', 'expiry'] as const;
const INFRA_SERVICES = ['kafka', 'registry', 'postgres', 'redis', 'nginx'] as const;
const EXPECTED_ROLE: Record<(typeof RELAY_SERVICES)[number], string> = {
  'relay-setup': 'setup',
  'ingress-1': 'ingress',
  'ingress-2': 'ingress',
  projector: 'projector',
  presence: 'presence',
  router: 'router',
  expiry: 'expiry',
};

const service = (name: string): Service => {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
};

/** A service's environment as strings, whether written as a map or as KEY=VALUE lines. */
const envOf = (name: string): Record<string, string> => {
  const env = service(name).environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)]));
};

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : value.split(/\s+/).filter(Boolean);

const dependsOn = (name: string): Record<string, DependsOn> => {
  const deps = service(name).depends_on ?? {};
  return Array.isArray(deps) ? Object.fromEntries(deps.map((dep) => [dep, {}])) : deps;
};

/** Container ports a service publishes (the target side of each mapping). */
const containerPorts = (name: string): number[] =>
  (service(name).ports ?? []).map((port) => {
    if (typeof port === 'object') return Number(port.target);
    const spec = String(port).replace(/\/(tcp|udp)$/, '');
    return Number(spec.split(':').at(-1));
  });

const publishedPorts = (name: string): number[] =>
  (service(name).ports ?? []).map((port) => {
    if (typeof port === 'object') return Number(port.published);
    const parts = String(port)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    return Number(parts.length >= 2 ? parts.at(-2) : parts[0]);
  });

const mounts = (name: string): { source: string; target: string }[] =>
  (service(name).volumes ?? []).map((volume) => {
    if (typeof volume === 'object') return { source: volume.source ?? '', target: volume.target ?? '' };
    const [source = '', target = ''] = volume.split(':');
    return { source, target };
  });

const DOCKERFILE_ENTRYPOINT: string[] = (() => {
  const match = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  return match?.[1] ? (JSON.parse(match[1]) as string[]) : [];
})();

/** What the container runs: the service's entrypoint (or the image's) followed by its command. */
const argvOf = (name: string): string[] => {
  const own = service(name).entrypoint;
  return [...(own === undefined ? DOCKERFILE_ENTRYPOINT : list(own)), ...list(service(name).command)];
};

// ---- what the infrastructure services listen on, read from their own settings ----------------

/** `NAME://host:port` entries of a Kafka listener list. */
const listeners = (value: string | undefined) =>
  (value ?? '').split(',').map((entry) => {
    const match = /^([A-Za-z0-9_]+):\/\/([^:]*):(\d+)$/.exec(entry.trim());
    if (!match) throw new Error(`unreadable Kafka listener "${entry}"`);
    return { name: match[1] ?? '', host: match[2] ?? '', port: Number(match[3]) };
  });

const kafkaEnv = envOf('kafka');
/** Kafka's listener for containers: advertised under the service name. */
const kafkaInternal = listeners(kafkaEnv.KAFKA_ADVERTISED_LISTENERS).filter((listener) => listener.host === 'kafka');
const registryPort = Number(envOf('registry').QUARKUS_HTTP_PORT ?? 8080);
const postgresPort = Number(envOf('postgres').PGPORT ?? 5432);
const redisPort = (() => {
  const match = /--port\s+(\d+)/.exec(list(service('redis').command).join(' '));
  return match?.[1] ? Number(match[1]) : 6379;
})();

const createdDatabases = [...postgresInit.matchAll(/CREATE\s+DATABASE\s+"?([A-Za-z0-9_]+)"?/gi)].map((m) => m[1]);

describe('docker-compose.yml', () => {
  it('has every service the relay needs', () => {
    for (const name of [...INFRA_SERVICES, ...RELAY_SERVICES]) expect(Object.keys(services)).toContain(name);
  });

  it('runs the infrastructure from the projects’ official images', () => {
    expect(service('kafka').image).toMatch(/^apache\/kafka:4\.\d+\.\d+$/);
    expect(service('postgres').image).toBe('postgres:16');
    expect(service('redis').image).toBe('redis:7');
    expect(service('registry').image).toBe('apicurio/apicurio-registry:3.0.9');
    expect(service('nginx').image).toMatch(/^nginx:1\.\d+/);
  });

  it('builds every relay service, and only those, from this repository', () => {
    const built = Object.entries(services)
      .filter(([, s]) => s.build !== undefined)
      .map(([name]) => name)
      .sort();
    expect(built).toEqual([...RELAY_SERVICES].sort());
    const images = new Set(RELAY_SERVICES.map((name) => service(name).image));
    expect(images.size).toBe(1);
  });

  describe.each(RELAY_SERVICES)('relay service %s', (name) => {
    const env = envOf(name);

    it('is configured only through RELAY_* variables the code knows', () => {
      const known = Object.keys(VARIABLES);
      const keys = Object.keys(env);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        expect(key).toMatch(/^RELAY_/);
        expect(known).toContain(key);
      }
    });

    it('passes the relay’s own configuration validation', () => {
      expect(() => loadConfig(env)).not.toThrow();
      const config = loadConfig(env);
      expect(config.nodeId).toBe(env.RELAY_NODE_ID);
      expect(config.kafka.brokers).toEqual(env.RELAY_KAFKA_BROKERS?.split(',').map((b) => b.trim()));
    });

    it('reaches Kafka by its service name on its container listener', () => {
      expect(kafkaInternal.length).toBeGreaterThan(0);
      const brokers = (env.RELAY_KAFKA_BROKERS ?? '').split(',').map((broker) => broker.trim());
      expect(brokers.length).toBeGreaterThan(0);
      for (const broker of brokers) {
        expect(kafkaInternal.map((listener) => `${listener.host}:${listener.port}`)).toContain(broker);
      }
    });

    it('reaches the schema registry’s Confluent-compatible API by its service name and port', () => {
      const url = new URL(env.RELAY_SCHEMA_REGISTRY_URL ?? '');
      expect(url.hostname).toBe('registry');
      expect(Number(url.port || (url.protocol === 'https:' ? 443 : 80))).toBe(registryPort);
      expect(url.pathname.replace(/\/+$/, '')).toBe('/apis/ccompat/v7');
    });

    it('reaches Postgres by its service name and port, in a database the init script creates', () => {
      const url = new URL(env.RELAY_DATABASE_URL ?? '');
      expect(url.hostname).toBe('postgres');
      expect(Number(url.port || 5432)).toBe(postgresPort);
      expect(createdDatabases).toContain(url.pathname.slice(1));
      const pg = envOf('postgres');
      expect(decodeURIComponent(url.username)).toBe(pg.POSTGRES_USER ?? 'postgres');
      if (pg.POSTGRES_HOST_AUTH_METHOD !== 'trust') expect(decodeURIComponent(url.password)).toBe(pg.POSTGRES_PASSWORD);
    });

    it('reaches Redis by its service name and port', () => {
      const url = new URL(env.RELAY_REDIS_URL ?? '');
      expect(url.hostname).toBe('redis');
      expect(Number(url.port || 6379)).toBe(redisPort);
    });

    it(`runs the CLI command "${EXPECTED_ROLE[name]}", which the CLI knows`, () => {
      const argv = argvOf(name);
      expect(argv.slice(0, 2)).toEqual(['node', 'dist/cli/main.js']);
      expect(argv).toHaveLength(3);
      expect([...ROLES, 'setup']).toContain(argv[2]);
      expect(argv[2]).toBe(EXPECTED_ROLE[name]);
    });
  });

  it('rejects a bad value through the same validation (the check above can fail)', () => {
    const env = { ...envOf('ingress-1'), RELAY_KAFKA_BROKERS: 'kafka' };
    expect(() => loadConfig(env)).toThrow(ConfigError);
  });

  it('gives the ingress replicas (and every relay node) a distinct node id', () => {
    const ids = RELAY_SERVICES.map((name) => envOf(name).RELAY_NODE_ID ?? '');
    for (const id of ids) expect(id).not.toBe('');
    expect(envOf('ingress-1').RELAY_NODE_ID).not.toBe(envOf('ingress-2').RELAY_NODE_ID);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('starts the roles only after relay-setup has completed, and setup only after its dependencies are healthy', () => {
    for (const name of RELAY_SERVICES.filter((n) => n !== 'relay-setup')) {
      expect(dependsOn(name)['relay-setup']?.condition).toBe('service_completed_successfully');
    }
    const setup = dependsOn('relay-setup');
    for (const dep of ['kafka', 'registry', 'postgres']) {
      expect(setup[dep]?.condition).toBe('service_healthy');
      expect(service(dep).healthcheck?.test).toBeDefined();
    }
    expect(dependsOn('registry').postgres?.condition).toBe('service_healthy');
  });

  describe('kafka', () => {
    it('runs in KRaft mode as broker and controller', () => {
      const roles = (kafkaEnv.KAFKA_PROCESS_ROLES ?? '').split(',').map((r) => r.trim());
      expect(roles).toContain('controller');
      expect(roles).toContain('broker');
      const controller = kafkaEnv.KAFKA_CONTROLLER_LISTENER_NAMES ?? '';
      const controllerListener = listeners(kafkaEnv.KAFKA_LISTENERS).find((l) => l.name === controller);
      expect(controllerListener?.port).toBe(9093);
      expect(kafkaEnv.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe(
        `${kafkaEnv.KAFKA_NODE_ID}@kafka:${controllerListener?.port}`,
      );
    });

    it('serves containers over PLAINTEXT on a port it listens on', () => {
      const protocols = Object.fromEntries(
        (kafkaEnv.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP ?? '').split(',').map((pair) => pair.split(':')),
      ) as Record<string, string>;
      const bound = listeners(kafkaEnv.KAFKA_LISTENERS);
      for (const listener of kafkaInternal) {
        expect(protocols[listener.name]).toBe('PLAINTEXT');
        expect(bound.find((l) => l.name === listener.name)?.port).toBe(listener.port);
      }
      expect(kafkaInternal.map((l) => l.port)).toContain(9092);
    });

    it('is a single node with topics made only by relay setup, on a named volume', () => {
      expect(kafkaEnv.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR).toBe('1');
      expect(kafkaEnv.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
      const volume = mounts('kafka').find((m) => m.target === kafkaEnv.KAFKA_LOG_DIRS);
      expect(volume).toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain(volume?.source);
    });
  });

  describe('registry and postgres', () => {
    it('keeps registry schemas in a Postgres database the init script creates', () => {
      const env = envOf('registry');
      expect(env.APICURIO_STORAGE_KIND).toBe('sql');
      expect(env.APICURIO_STORAGE_SQL_KIND).toBe('postgresql');
      const match = /^jdbc:postgresql:\/\/postgres:(\d+)\/([A-Za-z0-9_]+)$/.exec(env.APICURIO_DATASOURCE_URL ?? '');
      expect(match).not.toBeNull();
      expect(Number(match?.[1])).toBe(postgresPort);
      expect(createdDatabases).toContain(match?.[2]);
      expect(env.APICURIO_DATASOURCE_USERNAME).toBe(envOf('postgres').POSTGRES_USER ?? 'postgres');
      expect(containerPorts('registry')).toContain(registryPort);
      expect(publishedPorts('registry')).toContain(8081);
    });

    it('creates the relay’s databases from the mounted init script', () => {
      expect(createdDatabases).toEqual(expect.arrayContaining(['relay', 'relay_registry']));
      const init = mounts('postgres').find((m) => m.target.startsWith('/docker-entrypoint-initdb.d/'));
      expect(init?.source).toBe('./infra/compose/postgres-init.sql');
      expect(list(service('postgres').healthcheck?.test).join(' ')).toContain('pg_isready');
    });
  });

  describe('nginx', () => {
    const upstreams = [...nginxConf.matchAll(/upstream\s+([A-Za-z0-9_]+)\s*\{([^}]*)\}/g)].map((m) => ({
      name: m[1] ?? '',
      servers: [...(m[2] ?? '').matchAll(/^\s*server\s+([^\s;]+)/gm)].map((s) => s[1]),
    }));

    it('is configured from infra/nginx/nginx.conf and published on host port 8080', () => {
      expect(mounts('nginx').map((m) => m.source)).toContain('./infra/nginx/nginx.conf');
      expect(publishedPorts('nginx')).toContain(8080);
      expect(dependsOn('nginx')).toHaveProperty('ingress-1');
      expect(dependsOn('nginx')).toHaveProperty('ingress-2');
    });

    it('balances across both ingress replicas on the port they listen on', () => {
      const upstream = upstreams.find((u) => u.servers.some((s) => s?.startsWith('ingress-')));
      expect(upstream).toBeDefined();
      for (const name of ['ingress-1', 'ingress-2']) {
        expect(upstream?.servers).toContain(`${name}:${loadConfig(envOf(name)).http.port}`);
      }
    });

    it('upgrades /api/v1/stream to a WebSocket with a long read timeout', () => {
      expect(nginxConf).toMatch(/proxy_http_version\s+1\.1;/);
      expect(nginxConf).toMatch(/proxy_set_header\s+Upgrade\s+\$http_upgrade;/);
      expect(nginxConf).toMatch(/proxy_set_header\s+Connection\s+\S+;/);
      const upstream = upstreams.find((u) => u.servers.some((s) => s?.startsWith('ingress-')));
      const stream = /location\s+(?:\^~\s+)?\/api\/v1\/stream\s*\{([^}]*)\}/.exec(nginxConf)?.[1] ?? '';
      expect(stream.match(/proxy_pass\s+http:\/\/([A-Za-z0-9_]+);/)?.[1]).toBe(upstream?.name);
      const timeout = /proxy_read_timeout\s+(\d+)s?;/.exec(stream)?.[1];
      expect(Number(timeout)).toBeGreaterThanOrEqual(300);
    });

    it('passes the health paths through to the ingress', () => {
      for (const path of ['/healthz', '/readyz']) {
        const block = new RegExp(`location\\s+=?\\s*${path}\\s*\\{([^}]*)\\}`).exec(nginxConf)?.[1] ?? '';
        expect(block).toMatch(/proxy_pass\s+http:\/\//);
      }
    });
  });
});

describe('Dockerfile', () => {
  it('builds on node:20-slim and runs the CLI as the node user, with schemas and migrations beside dist/', () => {
    const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const base of stages) expect(base).toBe('node:20-slim');
    expect(DOCKERFILE_ENTRYPOINT).toEqual(['node', 'dist/cli/main.js']);
    expect(dockerfile).toMatch(/^USER\s+node\s*$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    for (const dir of ['dist', 'schemas', 'migrations'])
      expect(dockerfile).toMatch(new RegExp(`^COPY\\s.*\\s\\./${dir}\\s*$`, 'm'));
  });

  it('keeps local build output and state out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.relay', '.git']));
  });
});
