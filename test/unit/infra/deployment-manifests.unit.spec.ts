import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, VARIABLES } from '../../../src/config/config.js';
import { PROJECT_ROOT } from '../../../src/config/paths.js';
import { ROLES } from '../../../src/app/roles.js';
import { readEnvironmentFile, readUnit, REPOSITORY_ENV_FILE } from '../../helpers/systemd-unit.js';

// Without a cluster, the Kubernetes manifests are checked the way the compose file is: parsed,
// and held against the code they configure (the variable table and its validation, the CLI's
// roles, the ports the relay listens on, the image the Dockerfile builds).

const read = (path: string): string => readFileSync(join(PROJECT_ROOT, path), 'utf8');
const KNOWN = new Set(Object.keys(VARIABLES));
const VERSION = (JSON.parse(read('package.json')) as { version: string }).version;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; terminationGracePeriodSeconds?: number };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: PodTemplate;
    ports?: { name: string; port: number; targetPort: string | number }[];
  };
}

const k8sFiles = readdirSync(join(PROJECT_ROOT, 'infra/k8s')).filter((f) => f.endsWith('.yaml'));
const kustomization = parse(read('infra/k8s/kustomization.yaml')) as {
  resources: string[];
  images: { name: string; newName: string; newTag: string }[];
};
const manifests: Manifest[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(read(`infra/k8s/${file}`)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as Manifest;
  }),
);
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const configMap = ofKind('ConfigMap').find((m) => m.metadata.name === 'relay-config');
const secret = ofKind('Secret').find((m) => m.metadata.name === 'relay-secrets');
const workloads = [...ofKind('Deployment'), ...ofKind('Job')];
const containerOf = (m: Manifest): Container => m.spec?.template?.spec.containers[0] as Container;

/** A container's environment as the kubelet builds it: envFrom first, then env (literal values only). */
const environmentOf = (container: Container): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef)
      Object.assign(env, ofKind('ConfigMap').find((m) => m.metadata.name === source.configMapRef?.name)?.data);
    if (source.secretRef)
      Object.assign(env, ofKind('Secret').find((m) => m.metadata.name === source.secretRef?.name)?.stringData);
  }
  for (const variable of container.env ?? []) env[variable.name] = variable.value ?? 'from-the-pod';
  return env;
};

describe('the Kubernetes manifests (infra/k8s)', () => {
  it('parse, and the kustomization lists every file', () => {
    expect([...kustomization.resources, 'kustomization.yaml'].sort()).toEqual(k8sFiles.sort());
    expect(manifests.length).toBeGreaterThan(8);
    for (const m of manifests) expect(m.metadata.name).toMatch(/^[a-z0-9-]+$/);
  });

  it('run only the image the Dockerfile builds, at the package version', () => {
    expect(kustomization.images).toEqual([{ name: 'relay', newName: 'relay', newTag: VERSION }]);
    // docker-compose.yml builds the same image from the Dockerfile, as relay:local.
    const compose = parse(read('docker-compose.yml'), { merge: true }) as {
      services: Record<string, { image?: string; build?: unknown }>;
    };
    const built = Object.values(compose.services)
      .filter((s) => s.build !== undefined)
      .map((s) => s.image?.split(':')[0]);
    expect(new Set(built)).toEqual(new Set(['relay']));
    for (const m of workloads)
      for (const c of m.spec?.template?.spec.containers ?? [])
        expect({ workload: m.metadata.name, image: c.image }).toEqual({ workload: m.metadata.name, image: 'relay' });
  });

  it('configure the relay only with RELAY_* variables it knows, which pass its validation', () => {
    expect(configMap).toBeDefined();
    expect(secret).toBeDefined();
    for (const m of workloads) {
      const container = containerOf(m);
      const env = environmentOf(container);
      const names = [
        ...Object.keys(configMap?.data ?? {}),
        ...Object.keys(secret?.stringData ?? {}),
        ...(container.env ?? []).map((e) => e.name),
      ];
      expect(names.filter((n) => !KNOWN.has(n))).toEqual([]);
      expect(() => loadConfig(env)).not.toThrow();
    }
  });

  it('run a Deployment per role, each with the CLI role as its only argument, and the setup Job', () => {
    const deployed = ofKind('Deployment').map((m) => containerOf(m).args);
    expect(deployed.map((args) => args?.[0]).sort()).toEqual(ROLES.filter((r) => r !== 'all').sort());
    for (const args of deployed) expect(args).toHaveLength(1);
    expect(ofKind('Job').map((m) => containerOf(m).args)).toEqual([['setup']]);
  });

  it('probe /readyz and /healthz on ports the relay listens on, and tell Prometheus the metrics port', () => {
    for (const m of ofKind('Deployment')) {
      const container = containerOf(m);
      const config = loadConfig(environmentOf(container));
      const ports = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
      const role = container.args?.[0];
      // The ingress serves on RELAY_HTTP_PORT; every role, the ingress included, on RELAY_METRICS_PORT.
      expect(ports['metrics']).toBe(config.metricsPort);
      if (role === 'ingress') expect(ports['http']).toBe(config.http.port);
      else expect(ports['http']).toBeUndefined();
      expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
      for (const probe of [container.readinessProbe, container.livenessProbe])
        expect(Object.keys(ports)).toContain(probe?.httpGet?.port);
      const annotations = m.spec?.template?.metadata.annotations ?? {};
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(Number(annotations['prometheus.io/port'])).toBe(config.metricsPort);
      expect(container.resources?.requests?.cpu).toBeDefined();
      expect(container.resources?.limits?.memory).toBeDefined();
    }
  });

  it('give every role time to stop in order, and the ingress a preStop pause before SIGTERM', () => {
    for (const m of ofKind('Deployment')) {
      const container = containerOf(m);
      const config = loadConfig(environmentOf(container));
      const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
      const pause = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
      if (container.args?.[0] === 'ingress') expect(pause).toBeGreaterThan(0);
      expect((m.spec?.template?.spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(
        pause * 1000 + config.shutdownGraceMs,
      );
    }
  });

  it('put the ingress behind a Service on its http port, and keep replicas through disruptions', () => {
    const ingress = ofKind('Deployment').find((m) => containerOf(m).args?.[0] === 'ingress') as Manifest;
    const labels = ingress.spec?.template?.metadata.labels ?? {};
    const [service] = ofKind('Service');
    const selector = service?.spec?.selector ?? {};
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(selector)) expect(labels[k]).toBe(v);
    expect(service?.spec?.ports?.map((p) => p.targetPort)).toEqual(['http']);
    const budgets = ofKind('PodDisruptionBudget');
    const covered = budgets.map((pdb) =>
      ofKind('Deployment').find((d) =>
        Object.entries(pdb.spec?.selector?.matchLabels ?? {}).every(
          ([k, v]) => d.spec?.template?.metadata.labels[k] === v,
        ),
      ),
    );
    expect(covered.every((d) => d !== undefined)).toBe(true);
    expect(covered.map((d) => d?.metadata.name)).toContain('relay-ingress');
    for (const m of ofKind('Deployment'))
      expect(m.spec?.selector?.matchLabels).toEqual(m.spec?.template?.metadata.labels);
  });
});

describe('the systemd units (infra/systemd)', () => {
  const units = readdirSync(join(PROJECT_ROOT, 'infra/systemd')).filter((f) => f.endsWith('.service'));
  const fileEnv = readEnvironmentFile(REPOSITORY_ENV_FILE);

  it('have one unit per role, and setup', () => {
    expect(units.map((u) => readUnit(u).execStart.at(-1)).sort()).toEqual(
      [...ROLES.filter((r) => r !== 'all'), 'setup'].sort(),
    );
  });

  it('set only RELAY_* variables the relay knows, which pass its validation', () => {
    expect(Object.keys(fileEnv).filter((n) => !KNOWN.has(n))).toEqual([]);
    for (const name of units) {
      const unit = readUnit(name);
      expect(Object.keys(unit.environment).filter((n) => !KNOWN.has(n))).toEqual([]);
      expect(() => loadConfig({ ...fileEnv, ...unit.environment })).not.toThrow();
      expect(unit.execStart.slice(0, 4)).toEqual(['/usr/bin/env', 'node', 'dist/cli/main.js', unit.execStart[3]]);
      expect(unit.execStart).toHaveLength(4);
    }
  });

  it('are scraped by infra/prometheus/prometheus.yml at the ports they serve /metrics on', () => {
    const prometheus = parse(read('infra/prometheus/prometheus.yml')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = Object.fromEntries(
      prometheus.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((s) => s.targets)]),
    );
    for (const name of units.filter((u) => u !== 'relay-setup.service')) {
      const unit = readUnit(name);
      const role = unit.execStart.at(-1) as string;
      const config = loadConfig({ ...fileEnv, ...unit.environment });
      const port = role === 'ingress' ? config.http.port : config.metricsPort;
      expect(port).toBeGreaterThan(0);
      expect({ role, targets: targets[`relay-${role}`] }).toEqual({ role, targets: [`127.0.0.1:${port}`] });
    }
  });

  it('give the relay its grace period within systemd’s', () => {
    const grace = loadConfig(fileEnv).shutdownGraceMs;
    for (const name of units.filter((u) => u !== 'relay-setup.service')) {
      const stop = /^TimeoutStopSec=(\d+)$/m.exec(readUnit(name).raw)?.[1];
      expect(Number(stop) * 1000).toBeGreaterThan(grace);
    }
  });
});
