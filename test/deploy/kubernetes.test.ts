import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '@app/config';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments, parseDocument } from 'yaml';
import { BACKEND_NAMES } from '../../libs/ml/src/types.js';
import { ALL_QUEUES, WEBHOOKS_QUEUE } from '../../libs/queue/src/jobs.js';
import { PREDICT_QUEUE } from '../../libs/queue/src/predict.js';

// deploy/kubernetes: every document is checked against the Kubernetes API's JSON schemas (the
// validators that `kubernetes-models` ships, compiled from the OpenAPI of the Kubernetes release it
// tracks; `@kubernetes-models/keda` and `@kubernetes-models/prometheus-operator` for the CRDs) and,
// like `kubectl apply`'s strict field validation, for fields the API does not know (excess property
// checks of the same packages' TypeScript types). Then against the code: every variable the
// manifests set is one libs/config reads and the values pass loadConfig, the probes, the Service and
// the ServiceMonitor point at the routes and port the API serves, the grace periods cover the
// shutdown deadlines of apps/*/src/main.ts, the autoscalers target what exists and read queues and
// stages that the /metrics gauge has.

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, 'deploy/kubernetes');
const source = (path: string) => readFileSync(join(root, path), 'utf8');

type Obj = Record<string, any>;
interface Manifest {
  file: string;
  index: number;
  obj: Obj;
}

/** Kubernetes reads YAML 1.1 (sigs.k8s.io/yaml): `yes`/`no`/`on`/`off` are booleans there. */
function parseYaml(file: string): Obj[] {
  const text = readFileSync(join(dir, file), 'utf8');
  return parseAllDocuments(text, { version: '1.1', uniqueKeys: true }).map((doc, i) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length) throw new Error(`${file} document ${i}: ${problems.map((p) => p.message).join('; ')}`);
    return doc.toJS() as Obj;
  });
}

const yamlFiles = readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const kustomization = parseYaml('kustomization.yaml')[0];
const manifests: Manifest[] = yamlFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((file) => parseYaml(file).map((obj, index) => ({ file, index, obj })));
const docs = manifests.map((m) => m.obj);
const where = (m: Manifest) => `${m.file}#${m.index} ${m.obj.kind}/${m.obj.metadata?.name}`;
const ofKind = (kind: string) => docs.filter((d) => d.kind === kind);
const named = (kind: string, name: string) => {
  const found = ofKind(kind).find((d) => d.metadata.name === name);
  if (!found) throw new Error(`no ${kind} named ${name} in deploy/kubernetes`);
  return found;
};

// ---------------------------------------------------------------- the schemas

/** Packages whose validators cover an API group beyond the built-in ones (CRDs). */
const CRD_PACKAGES: Record<string, string> = {
  'keda.sh': '@kubernetes-models/keda',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/** The module of one kind, e.g. kubernetes-models/apps/v1/Deployment, kubernetes-models/v1/Service. */
function modelModule(apiVersion: string, kind: string): string {
  if (!/^[A-Za-z]+$/.test(kind)) throw new Error(`odd kind ${kind}`);
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const pkg = group === '' || !group.includes('.') || group.endsWith('.k8s.io') ? 'kubernetes-models' : CRD_PACKAGES[group];
  if (!pkg) throw new Error(`no schema package for apiVersion ${apiVersion} (kind ${kind})`);
  return `${pkg}/${apiVersion}/${kind}`;
}

/** The JSON-schema validation of the kind's model: types, required fields, enums, formats. */
async function schemaErrors(obj: Obj): Promise<string | null> {
  const mod = (await import(modelModule(obj.apiVersion, obj.kind))) as Record<string, new (data: Obj) => { validate(): void }>;
  const Model = mod[obj.kind];
  if (!Model) return `${modelModule(obj.apiVersion, obj.kind)} exports no ${obj.kind}`;
  try {
    new Model(structuredClone(obj)).validate();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Fields the API does not know (a typo such as `readinesProbe` passes JSON-schema validation, whose
 * objects are open, but `kubectl apply` refuses it): each document becomes an object literal typed
 * with its kind's interface, so TypeScript's excess property checks flag any unknown key at any
 * depth. Returns one message per unknown or mistyped field, prefixed with the document's label.
 */
function strictFieldErrors(objects: Array<{ label: string; obj: Obj }>): string[] {
  const file = join(root, 'test/deploy/__manifests__.mts');
  const lines: string[] = [];
  const starts: Array<{ line: number; label: string }> = [];
  objects.forEach(({ obj }, i) => {
    lines.push(`import type { I${obj.kind} as T${i} } from ${JSON.stringify(modelModule(obj.apiVersion, obj.kind))};`);
  });
  objects.forEach(({ label, obj }, i) => {
    starts.push({ line: lines.length, label });
    lines.push(...`export const doc${i}: T${i} = ${JSON.stringify(obj, null, 2)};`.split('\n'));
  });
  const text = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'],
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, text, version) : getSourceFile.call(host, name, version, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? text : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  const diagnostics = [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics(), ...program.getGlobalDiagnostics()];
  return diagnostics.map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== file || d.start === undefined) return `${d.file?.fileName ?? 'typescript'}: ${message}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const doc = starts.filter((s) => s.line <= line).at(-1);
    return `${doc?.label ?? 'imports'} (line ${line - (doc?.line ?? 0) + 1} of its JSON): ${lines[line].trim()} — ${message}`;
  });
}

// ---------------------------------------------------------------- the configuration

/** The variables of libs/config's EnvSchema, read from its source (its schema is not exported). */
function configVariables(): Set<string> {
  const text = source('libs/config/src/config.ts');
  const start = text.indexOf('const EnvSchema = z.object({');
  const end = text.indexOf('\n});', start);
  if (start < 0 || end < 0) throw new Error('EnvSchema = z.object({ ... }) not found in libs/config/src/config.ts');
  return new Set([...text.slice(start, end).matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]));
}
const CONFIG_VARS = configVariables();

/** Set in the manifests for libraries below the code, which libs/config does not read. */
const RUNTIME_VARS: Record<string, string> = {
  TF_FORCE_GPU_ALLOW_GROWTH: 'libtensorflow (tfjs-node-gpu): allocate GPU memory as needed, so that the children share one GPU',
};

/** What a filled-in Secret holds in place of secret.yaml's placeholders (values that pass loadConfig). */
const FILLED: Record<string, string> = {
  ADMIN_API_KEY: `adm_${'0123456789abcdef'.repeat(3)}`,
  WEBHOOK_SECRET_KEY: 'ab'.repeat(32),
  METRICS_TOKEN: 'metrics-token-for-the-test-only',
};
const PLACEHOLDER = /REPLACE_ME\w*/g;
const isPlaceholder = (v: string) => v.includes('REPLACE_ME');

function secretValues(name: string, filled: boolean): Record<string, string> {
  const secret = named('Secret', name);
  const data = { ...(secret.stringData ?? {}) } as Record<string, string>;
  for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(String(v), 'base64').toString('utf8');
  if (!filled) return data;
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, isPlaceholder(v) ? (FILLED[k] ?? v.replace(PLACEHOLDER, 'filled')) : v]),
  );
}

/** The environment a container gets: envFrom in order, then env (which wins), as the kubelet builds it. */
function containerEnv(container: Obj, filled = true): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, named('ConfigMap', from.configMapRef.name).data);
    if (from.secretRef) Object.assign(env, secretValues(from.secretRef.name, filled));
  }
  for (const e of container.env ?? []) {
    const ref = e.valueFrom;
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (ref?.fieldRef) env[e.name] = `pod-${ref.fieldRef.fieldPath.replace(/\W/g, '-')}`;
    else if (ref?.configMapKeyRef) env[e.name] = named('ConfigMap', ref.configMapKeyRef.name).data[ref.configMapKeyRef.key];
    else if (ref?.secretKeyRef) env[e.name] = secretValues(ref.secretKeyRef.name, filled)[ref.secretKeyRef.key];
    else env[e.name] = '';
  }
  return env;
}

const deployments = ofKind('Deployment');
const podSpec = (d: Obj) => d.spec.template.spec as Obj;
const containersOf = (d: Obj) => [...(podSpec(d).initContainers ?? []), ...podSpec(d).containers] as Obj[];
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const selectedDeployments = (selector: Record<string, string> | undefined) =>
  deployments.filter((d) => selects(selector, d.spec.template.metadata.labels));

/** The Deployment the API Service selects, and its `api` container. */
const apiService = named('Service', 'aiaas-api');
const [apiDeployment] = selectedDeployments(apiService.spec.selector);
const apiContainer = apiDeployment?.spec.template.spec.containers.find((c: Obj) => c.name === 'api') as Obj;
const isWorker = (d: Obj) => containersOf(d).some((c) => (c.command ?? []).join(' ').includes('apps/worker/src/main.js'));
const workers = deployments.filter(isWorker);

/** A probe's or Service's port (a number or a container port's name) as the container port number. */
function resolvePort(container: Obj, port: number | string): number | undefined {
  if (typeof port === 'number') return (container.ports ?? []).some((p: Obj) => p.containerPort === port) ? port : undefined;
  return (container.ports ?? []).find((p: Obj) => p.name === port)?.containerPort;
}

function preStopSeconds(container: Obj): number {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return 0;
  if (preStop.sleep) return Number(preStop.sleep.seconds);
  const [cmd, seconds] = preStop.exec?.command ?? [];
  if (cmd === 'sleep' || cmd === '/bin/sleep') return Number(seconds);
  throw new Error(`preStop of ${container.name} is neither a sleep nor an exec of sleep`);
}

/** A number the code states, e.g. `deadlineMs = 15_000`. */
function numberIn(path: string, pattern: RegExp): number {
  const m = source(path).match(pattern);
  if (!m) throw new Error(`${pattern} not found in ${path}: the shutdown code changed, update this test and the manifests`);
  return Number(m[1].replace(/_/g, ''));
}

// ---------------------------------------------------------------- the tests

describe('deploy/kubernetes', () => {
  it('is a kustomization listing every manifest, each namespace-free with a name', () => {
    expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization.kind).toBe('Kustomization');
    expect([...kustomization.resources].sort()).toEqual(yamlFiles.filter((f) => f !== 'kustomization.yaml'));
    expect(ofKind('Namespace').map((n) => n.metadata.name)).toEqual([kustomization.namespace]);
    for (const m of manifests) {
      expect({ doc: where(m), name: typeof m.obj.metadata?.name }).toEqual({ doc: where(m), name: 'string' });
      expect({ doc: where(m), namespace: m.obj.metadata.namespace }).toEqual({ doc: where(m), namespace: undefined });
    }
    const ids = manifests.map((m) => `${m.obj.kind}/${m.obj.metadata.name}`);
    expect(ids.length).toBe(new Set(ids).size);
  });

  it('validates every document against the Kubernetes (and KEDA, Prometheus Operator) schemas', async () => {
    const failures: string[] = [];
    for (const m of manifests) {
      const problem = await schemaErrors(m.obj);
      if (problem) failures.push(`${where(m)}: ${problem}`);
    }
    expect(failures).toEqual([]);
    expect(new Set(docs.map((d) => `${d.apiVersion} ${d.kind}`))).toEqual(
      new Set([
        'v1 Namespace',
        'v1 ConfigMap',
        'v1 Secret',
        'v1 Service',
        'apps/v1 Deployment',
        'autoscaling/v2 HorizontalPodAutoscaler',
        'policy/v1 PodDisruptionBudget',
        'keda.sh/v1alpha1 ScaledObject',
        'monitoring.coreos.com/v1 ServiceMonitor',
      ]),
    );
  });

  it('has no field the API does not know (strict field validation)', () => {
    expect(strictFieldErrors(manifests.map((m) => ({ label: where(m), obj: m.obj })))).toEqual([]);
  });

  it('catches a broken manifest: a wrong type, a missing required field, an unknown field', async () => {
    const wrongType = structuredClone(apiDeployment);
    wrongType.spec.template.spec.terminationGracePeriodSeconds = '30';
    expect(await schemaErrors(wrongType)).toMatch(/terminationGracePeriodSeconds must be integer/);
    const missing = structuredClone(named('ScaledObject', 'aiaas-worker'));
    delete missing.spec.scaleTargetRef;
    expect(await schemaErrors(missing)).toMatch(/scaleTargetRef/);
    const badYaml = parseDocument('a: [1', { version: '1.1' });
    expect(badYaml.errors.length).toBeGreaterThan(0);

    const typo = structuredClone(apiDeployment);
    typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe;
    const monitor = structuredClone(named('ServiceMonitor', 'aiaas-api'));
    monitor.spec.endpoints[0].bearerTokenSecrett = { name: 'x', key: 'y' };
    const errors = strictFieldErrors([
      { label: 'typo', obj: typo },
      { label: 'monitor', obj: monitor },
      { label: 'good', obj: named('Service', 'aiaas-api') },
    ]);
    expect(errors).toEqual([
      expect.stringMatching(/^typo .*readinesProbe.* does not exist in type 'IContainer'/),
      expect.stringMatching(/^monitor .*bearerTokenSecrett/),
    ]);
  });

  it('sets only variables that libs/config reads, and only values it accepts', () => {
    expect([...CONFIG_VARS]).toEqual(
      expect.arrayContaining(['PORT', 'DATABASE_URL', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'TF_BACKEND', 'WORKER_SHUTDOWN_DEADLINE_MS']),
    );
    const set: string[] = [];
    for (const cm of ofKind('ConfigMap')) set.push(...Object.keys(cm.data ?? {}));
    for (const s of ofKind('Secret')) set.push(...Object.keys({ ...s.stringData, ...s.data }));
    for (const d of deployments) for (const c of containersOf(d)) set.push(...(c.env ?? []).map((e: Obj) => e.name));
    // Variables named in the comments (alternatives to uncomment, such as REDIS_CLUSTER_NODES) too.
    for (const f of ['configmap.yaml', 'secret.yaml'])
      set.push(...[...readFileSync(join(dir, f), 'utf8').matchAll(/^\s*#\s+([A-Z][A-Z0-9_]{2,}):\s/gm)].map((m) => m[1]));
    expect(set).toEqual(expect.arrayContaining(['REDIS_CLUSTER_NODES', 'METRICS_TOKEN', 'ADMIN_API_KEY', 'DATABASE_URL', 'REDIS_URL']));
    expect([...new Set(set)].filter((v) => !CONFIG_VARS.has(v) && !RUNTIME_VARS[v])).toEqual([]);

    // Every container's environment, the Secret filled in, is one the process starts with.
    for (const d of deployments) {
      for (const c of containersOf(d)) {
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) named('ConfigMap', from.configMapRef.name);
          if (from.secretRef) named('Secret', from.secretRef.name);
        }
        expect(() => loadConfig(containerEnv(c))).not.toThrow();
        expect(loadConfig(containerEnv(c)).env).toBe('production');
      }
    }
  });

  it('ships the Secret as a template whose placeholders stop the pods instead of running with them', () => {
    const secrets = ofKind('Secret');
    expect(secrets.map((s) => s.metadata.name)).toEqual(['aiaas-secrets']);
    const values = secretValues('aiaas-secrets', false);
    expect(Object.keys(values)).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'ADMIN_API_KEY', 'WEBHOOK_SECRET_KEY', 'METRICS_TOKEN']),
    );
    for (const [key, value] of Object.entries(values)) expect({ key, marked: isPlaceholder(value) }).toEqual({ key, marked: true });
    let error: unknown;
    try {
      loadConfig(containerEnv(apiContainer, false));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    for (const key of ['ADMIN_API_KEY', 'WEBHOOK_SECRET_KEY', 'METRICS_TOKEN']) expect((error as Error).message).toContain(`${key}:`);
    // PostgreSQL and Redis are external: named (ExternalName), never deployed here.
    const external = ofKind('Service').filter((s) => s.spec.type === 'ExternalName');
    expect(external.map((s) => s.metadata.name).sort()).toEqual(['aiaas-postgres', 'aiaas-redis']);
    expect(values.DATABASE_URL).toContain('@aiaas-postgres:');
    expect(values.REDIS_URL).toContain('@aiaas-redis:');
    expect(ofKind('StatefulSet')).toEqual([]);
    const images = deployments.flatMap((d) => containersOf(d).map((c) => c.image as string));
    expect(images.filter((image) => !/^aiaas(-gpu)?:/.test(image))).toEqual([]);
  });

  it('runs the API as the Dockerfile does, probed on /healthz and /readyz at the port it listens on, behind its Service', () => {
    expect(apiDeployment).toBeDefined();
    expect(selectedDeployments(apiService.spec.selector)).toHaveLength(1);
    const controller = source('apps/api/src/health/health.controller.ts');
    expect(controller).toContain("@Get('healthz')");
    expect(controller).toContain("@Get('readyz')");
    const dockerCmd = source('Dockerfile').match(/^CMD (\[.*\])$/m)?.[1];
    expect(apiContainer.command).toEqual(JSON.parse(dockerCmd ?? 'null'));
    expect(apiContainer.image).toBe('aiaas:latest');

    const config = loadConfig(containerEnv(apiContainer));
    const port = (p: Obj) => resolvePort(apiContainer, p.httpGet?.port);
    expect(apiContainer.readinessProbe.httpGet.path).toBe('/readyz');
    expect(apiContainer.livenessProbe.httpGet.path).toBe('/healthz');
    expect(apiContainer.startupProbe.httpGet.path).toBe('/healthz');
    for (const probe of [apiContainer.readinessProbe, apiContainer.livenessProbe, apiContainer.startupProbe])
      expect(port(probe)).toBe(config.port);
    expect(config.host).toBe('0.0.0.0');

    for (const p of apiService.spec.ports) expect(resolvePort(apiContainer, p.targetPort ?? p.port)).toBe(config.port);
    // Every other Service selecting pods selects exactly one Deployment's.
    for (const s of ofKind('Service').filter((x) => x.spec.selector)) expect(selectedDeployments(s.spec.selector)).toHaveLength(1);
  });

  it('gives the API a grace period covering the preStop drain and its own close deadline', () => {
    const deadlineMs = numberIn('libs/common/src/shutdown.ts', /deadlineMs = ([\d_]+)/);
    expect(source('apps/api/src/main.ts')).toMatch(/closeOnSignals\(app\);/); // the default deadline
    const sleep = preStopSeconds(apiContainer);
    expect(sleep).toBeGreaterThanOrEqual(5);
    expect(podSpec(apiDeployment).terminationGracePeriodSeconds).toBeGreaterThan(sleep + deadlineMs / 1000);
    // The migrator runs before the API (the image's prisma/ migrations), from the same image.
    const [migrate] = podSpec(apiDeployment).initContainers;
    expect(migrate.command).toEqual(['node', 'dist/libs/db/src/migrate.cli.js']);
    expect(migrate.image).toBe(apiContainer.image);
  });

  it('runs workers with the worker command, no HTTP probes, and a grace period above their hand-back deadline', () => {
    expect(workers.map((d) => d.metadata.name).sort()).toEqual(['aiaas-worker', 'aiaas-worker-gpu']);
    const closeExtraMs = numberIn('apps/worker/src/main.ts', /closeOnSignals\(app, config\.workerShutdownDeadlineMs \+ ([\d_]+)\)/);
    for (const d of workers) {
      const [c, ...others] = podSpec(d).containers;
      expect(others).toEqual([]);
      expect(c.command).toEqual(['node', 'dist/apps/worker/src/main.js']);
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) expect(c[probe]?.httpGet).toBeUndefined();
      const config = loadConfig(containerEnv(c));
      const exitsWithinS = (config.workerShutdownDeadlineMs + closeExtraMs) / 1000 + preStopSeconds(c);
      expect({ worker: d.metadata.name, grace: podSpec(d).terminationGracePeriodSeconds > exitsWithinS }).toEqual({
        worker: d.metadata.name,
        grace: true,
      });
      expect(c.resources.requests.cpu).toBeDefined();
      expect(c.resources.requests.memory).toBeDefined();
    }
  });

  it('starts only programs that exist in the build', () => {
    for (const d of deployments) {
      for (const c of containersOf(d)) {
        const [node, file] = c.command;
        expect(node).toBe('node');
        expect(file).toMatch(/^dist\/.*\.js$/);
        expect({ file, source: existsSync(join(root, file.replace(/^dist\//, '').replace(/\.js$/, '.ts'))) }).toEqual({
          file,
          source: true,
        });
      }
    }
  });

  it('has a GPU worker variant that forces the tfjs-node-gpu backend on GPU nodes', () => {
    const gpu = named('Deployment', 'aiaas-worker-gpu');
    const [c] = podSpec(gpu).containers;
    const config = loadConfig(containerEnv(c));
    expect(config.tfBackend).toBe('tfjs-node-gpu');
    expect(BACKEND_NAMES).toContain(config.tfBackend);
    expect(source('libs/ml/src/backend.ts')).toContain("'@tensorflow/tfjs-node-gpu'");
    expect(Number(c.resources.limits['nvidia.com/gpu'])).toBeGreaterThanOrEqual(1);
    expect(podSpec(gpu).tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'nvidia.com/gpu' })]));
    expect(podSpec(gpu).nodeSelector ?? podSpec(gpu).affinity).toBeDefined();
    // The CPU worker forces no backend (it takes the best that loads: wasm in the default image).
    expect(loadConfig(containerEnv(podSpec(named('Deployment', 'aiaas-worker')).containers[0])).tfBackend).toBeNull();
  });

  it('scales the API with an autoscaling/v2 HPA on CPU, and each worker Deployment with one KEDA ScaledObject', () => {
    const hpas = ofKind('HorizontalPodAutoscaler');
    const scaled = ofKind('ScaledObject');
    for (const hpa of hpas) {
      const ref = hpa.spec.scaleTargetRef;
      expect(ref.kind).toBe('Deployment');
      expect(named('Deployment', ref.name)).toBeDefined();
      expect(hpa.spec.metrics).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) })]),
      );
      expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    }
    expect(hpas.map((h) => h.spec.scaleTargetRef.name)).toEqual([apiDeployment.metadata.name]);
    // KEDA makes its own HPA: a Deployment must not have both.
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(workers.map((d) => d.metadata.name).sort());
    // Kubernetes autoscalers own `replicas`: a re-apply must not reset it.
    for (const d of [apiDeployment, ...workers])
      expect({ d: d.metadata.name, replicas: d.spec.replicas }).toEqual({ d: d.metadata.name, replicas: undefined });
  });

  it('scales workers by the /metrics queue-depth gauge, on queues and stages it has, per slot', () => {
    const ops = source('apps/api/src/admin/operations.service.ts');
    expect(ops).toMatch(/name: 'aiaas_queue_depth',[\s\S]{0,200}labelNames: \['scope', 'queue', 'stage'\]/);
    const stages = JSON.parse((ops.match(/for \(const stage of (\[[^\]]*\]) as const\)/)?.[1] ?? 'null').replace(/'/g, '"')) as string[];
    expect(stages).toEqual(expect.arrayContaining(['scheduled', 'ready']));
    const queues = new Set([...ALL_QUEUES, WEBHOOKS_QUEUE, PREDICT_QUEUE]);
    const monitor = named('ServiceMonitor', 'aiaas-api');

    for (const so of ofKind('ScaledObject')) {
      expect(so.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
      const target = named('Deployment', so.spec.scaleTargetRef.name);
      const config = loadConfig(containerEnv(podSpec(target).containers[0]));
      const gpu = config.tfBackend === 'tfjs-node-gpu';
      expect(so.spec.triggers.length).toBeGreaterThan(0);
      for (const t of so.spec.triggers) {
        const label = `${so.metadata.name}/${t.name}`;
        expect({ label, type: t.type }).toEqual({ label, type: 'prometheus' });
        const q = t.metadata.query as string;
        expect(q).toMatch(/^sum\(max by \(queue, stage\) \(aiaas_queue_depth\{scope="cluster",/);
        const named_ = q.match(/queue=~"([^"]+)"/)?.[1].split('|') ?? [];
        const staged = q.match(/stage=~"([^"]+)"/)?.[1].split('|') ?? [];
        expect(named_.filter((n) => !queues.has(n))).toEqual([]);
        expect(staged.filter((s) => !stages.includes(s))).toEqual([]);
        expect(staged).toEqual(expect.arrayContaining(['scheduled', 'ready', 'active']));
        // The GPU worker scales on the -gpu queues, which only it consumes; the CPU worker on the others.
        expect({ label, gpuQueues: named_.every((n) => n.endsWith('-gpu')) }).toEqual({ label, gpuQueues: gpu });
        // Threshold = the jobs one pod runs at once, so ceil(depth / threshold) pods keep every job running.
        const perPod = named_.every((n) => /^(training|evaluation)(-gpu)?$/.test(n))
          ? config.workerConcurrency
          : named_.every((n) => /^inference(-gpu)?$/.test(n))
            ? config.workerInferenceJobs
            : null;
        expect({ label, threshold: Number(t.metadata.threshold) }).toEqual({ label, threshold: perPod });
        expect(t.metadata.serverAddress).toMatch(/^https?:\/\//);
      }
    }

    // Prometheus reads those figures from the API Service's pods, with METRICS_TOKEN as bearer token.
    expect(selects(monitor.spec.selector.matchLabels, apiService.metadata.labels)).toBe(true);
    for (const e of monitor.spec.endpoints) {
      expect(apiService.spec.ports.map((p: Obj) => p.name)).toContain(e.port);
      expect(e.path).toBe('/metrics');
      expect(e.authorization.type).toBe('Bearer');
      expect(secretValues(e.authorization.credentials.name, true)[e.authorization.credentials.key]).toBeDefined();
      expect(e.authorization.credentials.key).toBe('METRICS_TOKEN');
    }
    expect(source('apps/api/src/health/health.controller.ts')).toMatch(/@Get\('metrics'\)\s*@Admin\(\)\s*@Scrape\(\)/);
  });

  it('has one PodDisruptionBudget for each Deployment', () => {
    const pdbs = ofKind('PodDisruptionBudget');
    for (const pdb of pdbs) expect(selectedDeployments(pdb.spec.selector.matchLabels)).toHaveLength(1);
    for (const d of deployments) {
      const covering = pdbs.filter((p) => selects(p.spec.selector.matchLabels, d.spec.template.metadata.labels));
      expect({ d: d.metadata.name, pdbs: covering.length }).toEqual({ d: d.metadata.name, pdbs: 1 });
    }
    // Every Deployment's selector matches its own pods, and only its own.
    for (const d of deployments) expect(selectedDeployments(d.spec.selector.matchLabels)).toEqual([d]);
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  (kubectl ? it : it.skip)('builds with kustomize (kubectl kustomize) into the same documents, in the namespace', () => {
    const built = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
    const out = parseAllDocuments(built.stdout, { version: '1.1' }).map((d) => d.toJS() as Obj);
    expect(out.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort());
    for (const d of out) if (d.kind !== 'Namespace') expect(d.metadata.namespace).toBe(kustomization.namespace);
  });
});
