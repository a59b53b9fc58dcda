import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Database } from '@app/db';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// A model import is loaded once by a real worker before it becomes a version: what cannot load or
// run is a 4xx naming the problem and leaves nothing behind (no version, no artifact, no storage,
// no version number); no worker is a 503, never a 201 of something unchecked.
let server: RunningApi;
let worker: RunningProcess | null = null;
let t: TenantFixture;
let db: Database;
/** A model.json downloaded from this service (aiaas metadata included). */
let downloaded: Record<string, any>;

const features = ['x1', 'x2', 'x3', 'x4'];
const foreignMeta = { input_schema: { label: 'label', features }, labels: ['class_a', 'class_b', 'class_c'] };
const inputs = blobs.slice(0, 3).map((r) => Object.fromEntries(features.map((f) => [f, r[f] as number])));

beforeAll(async () => {
  server = await startApi();
  worker = await startWorker({ TF_BACKEND: 'wasm' });
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  db = new Database(process.env.DATABASE_URL!, 2);
  const src = (await t.api.post('/v1/models', { name: 'source', task: 'classification' })).body;
  await storeVersion(t.id, src.id, `job_import_source_${Date.now()}`);
  const r = await fetch(`${server.url}/v1/models/source/versions/1/artifact`, { headers: { authorization: `Bearer ${t.key.secret}` } });
  downloaded = JSON.parse(Buffer.from(await r.arrayBuffer()).toString('utf8'));
}, 90_000);
afterAll(async () => {
  await db?.close();
  await worker?.stop();
  await server?.stop();
});

const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x));
/** The downloaded model.json without its aiaas metadata: what TF.js writes elsewhere. */
const foreign = () => {
  const { userDefinedMetadata: _, ...json } = copy(downloaded);
  return json;
};
const firstLayer = (json: Record<string, any>) => json.modelTopology.config.layers[0];

async function newModel(name: string): Promise<string> {
  const r = await t.api.post('/v1/models', { name, task: 'classification' });
  expect(r.status).toBe(201);
  return r.body.id;
}

/** Everything an import could leave behind: versions, storage, staged artifacts. */
async function traces(modelId: string) {
  const versions = (await t.api.get(`/v1/models/${modelId}/versions`)).body.data.length;
  const storage = (await t.api.get('/v1/me')).body.usage.storage_bytes;
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM staged_imports WHERE tenant_id = $1', [t.id]);
  return { versions, storage, staged: rows[0].n };
}

describe('model imports are loaded once before they become versions', () => {
  it('refuses an unknown class in a layer config (a Custom> regularizer, initializer, constraint, activation) with a 400 naming the layer and class', async () => {
    const m = await newModel('custom-classes');
    const before = await traces(m);
    const cases: Array<[string, (layer: Record<string, any>) => void, RegExp]> = [
      [
        'kernel_regularizer',
        (l) => (l.config.kernel_regularizer = { class_name: 'Custom>x', config: {} }),
        /layer 'hidden_1': kernel_regularizer class "Custom>x"/,
      ],
      [
        'bias_initializer',
        (l) => (l.config.bias_initializer = { class_name: 'Custom>init', config: {} }),
        /layer 'hidden_1': bias_initializer class "Custom>init"/,
      ],
      [
        'kernel_constraint',
        (l) => (l.config.kernel_constraint = { class_name: 'Custom>c', config: {} }),
        /kernel_constraint class "Custom>c"/,
      ],
      [
        'nested',
        (l) => (l.config.kernel_initializer.config.inner = { class_name: 'Custom>deep' }),
        /kernel_initializer\.config\.inner names class "Custom>deep"/,
      ],
      ['activation', (l) => (l.config.activation = 'Custom>act'), /activation "Custom>act"/],
    ];
    for (const [what, mutate, message] of cases) {
      for (const [form, json, meta] of [
        ['downloaded', copy(downloaded), {}],
        ['foreign', foreign(), foreignMeta],
      ] as const) {
        mutate(firstLayer(json));
        const r = await t.api.post(`/v1/models/${m}/versions`, { model: json, ...meta });
        expect([what, form, r.status, r.body.error?.code]).toEqual([what, form, 400, 'architecture_not_allowed']);
        expect(r.body.error.message).toMatch(message);
      }
    }
    expect(await traces(m)).toEqual(before);
  });

  it('refuses an int32 or non-finite weight with a 400 naming the weight', async () => {
    const m = await newModel('bad-weights');
    const before = await traces(m);
    for (const [form, json, meta] of [
      ['downloaded', copy(downloaded), {}],
      ['foreign', foreign(), foreignMeta],
    ] as const) {
      json.weightsManifest[0].weights[0].dtype = 'int32';
      const r = await t.api.post(`/v1/models/${m}/versions`, { model: json, ...meta });
      expect([form, r.status, r.body.error?.code]).toEqual([form, 400, 'invalid_model']);
      expect(r.body.error.message).toContain("weight 'hidden_1/kernel' has dtype int32");
    }
    const nan = foreign();
    const bytes = Buffer.from(nan.weightData, 'base64');
    bytes.writeFloatLE(Number.NaN, 4);
    nan.weightData = bytes.toString('base64');
    const r = await t.api.post(`/v1/models/${m}/versions`, { model: nan, ...foreignMeta });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("weight 'hidden_1/kernel' holds NaN");
    expect(await traces(m)).toEqual(before);
  });

  it('refuses what only TF.js finds (a misfit weight shape, a dtype that fails at run time) with a 400 from the worker check, and burns no version number', async () => {
    const m = await newModel('load-failures');
    const before = await traces(m);
    // The element count is right, so every static check passes; TF.js refuses the shape at load.
    const swapped = foreign();
    const kernel = swapped.weightsManifest[0].weights[0];
    kernel.shape = [...kernel.shape].reverse();
    const shape = await t.api.post(`/v1/models/${m}/versions`, { model: swapped, ...foreignMeta });
    expect(shape.status).toBe(400);
    expect(shape.body.error).toMatchObject({ code: 'model_invalid', param: 'model' });
    expect(shape.body.error.message).toContain(
      `weight 'hidden_1/kernel' has shape ${JSON.stringify(kernel.shape)}; the layer needs ${JSON.stringify([...kernel.shape].reverse())}`,
    );
    // Loads fine, fails on the first predict.
    const complex = copy(downloaded);
    firstLayer(complex).config.dtype = 'complex64';
    const run = await t.api.post(`/v1/models/${m}/versions`, { model: complex });
    expect(run.status).toBe(400);
    expect(run.body.error.code).toBe('model_invalid');
    expect(run.body.error.message).toMatch(/cannot run the model.*complex64/);
    // TF.js refuses the initializer's config when it builds the layer.
    const badInit = foreign();
    firstLayer(badInit).config.kernel_initializer = { class_name: 'VarianceScaling', config: { mode: 'bogus' } };
    const init = await t.api.post(`/v1/models/${m}/versions`, { model: badInit, ...foreignMeta });
    expect(init.status).toBe(400);
    expect(init.body.error.message).toContain('bogus is not a valid FanMode');
    expect(await traces(m)).toEqual(before);
    // Nothing was numbered: the first import that loads is version 1.
    const ok = await t.api.post(`/v1/models/${m}/versions`, { model: copy(downloaded) });
    expect([ok.status, ok.body.version]).toEqual([201, 1]);
  });

  it('imports a downloaded artifact and a foreign model.json that load, and both predict with 200', async () => {
    for (const [name, body] of [
      ['reimported', { model: copy(downloaded) }],
      ['foreign-ok', { model: foreign(), ...foreignMeta }],
    ] as const) {
      const m = await newModel(name);
      const r = await t.api.post(`/v1/models/${m}/versions`, body);
      expect([name, r.status]).toEqual([name, 201]);
      expect(r.body).toMatchObject({ version: 1, source: 'import', labels: foreignMeta.labels });
      const p = await t.api.post(`/v1/models/${m}/predict`, { inputs }, { headers: { Prefer: 'wait=30' } });
      expect([name, p.status]).toEqual([name, 200]);
      expect(p.body.predictions).toHaveLength(inputs.length);
      expect(foreignMeta.labels).toContain(p.body.predictions[0].label);
    }
    expect((await traces(await newModel('after'))).staged).toBe(0);
  });

  it('answers a malformed import body with a 4xx, never a 5xx', async () => {
    const m = await newModel('malformed');
    const before = await traces(m);
    const json = { 'content-type': 'application/json' };
    const attempts: Array<[string, { raw: string; headers: Record<string, string> }, number]> = [
      ['cut JSON', { raw: '{"model": {"format": "layers-model", ', headers: json }, 400],
      ['model a string', { raw: JSON.stringify({ model: 'PK\u0003\u0004' }), headers: json }, 400],
      ['model an array', { raw: JSON.stringify({ model: [1, 2] }), headers: json }, 400],
      ['empty model', { raw: JSON.stringify({ model: {} }), headers: json }, 400],
      [
        'topology not an object',
        { raw: JSON.stringify({ model: { ...foreign(), modelTopology: 'Sequential' }, ...foreignMeta }), headers: json },
        400,
      ],
      [
        'weightData not base64',
        { raw: JSON.stringify({ model: { ...foreign(), weightData: '!!!!' }, ...foreignMeta }), headers: json },
        400,
      ],
      [
        'layers not a list',
        {
          raw: JSON.stringify({
            model: { ...foreign(), modelTopology: { class_name: 'Sequential', config: { layers: 7 } } },
            ...foreignMeta,
          }),
          headers: json,
        },
        400,
      ],
      ['config 40 deep', { raw: nestedConfig(40), headers: json }, 400],
      ['config 5,000 deep', { raw: nestedConfig(5_000), headers: json }, 400],
      ['a zip', { raw: 'PK\u0003\u0004garbage', headers: { 'content-type': 'application/zip' } }, 415],
    ];
    for (const [what, opts, status] of attempts) {
      const r = await t.api.call('POST', `/v1/models/${m}/versions`, opts);
      expect([what, r.status, typeof r.body.error?.code]).toEqual([what, status, 'string']);
    }
    expect(await traces(m)).toEqual(before);
  });

  it('answers another tenant’s model id or name with 404 and checks nothing for it', async () => {
    const m = await newModel('isolated');
    const other = await createTenant(server.url);
    for (const ref of [m, 'isolated']) {
      const r = await other.api.post(`/v1/models/${ref}/versions`, { model: copy(downloaded) });
      expect([ref, r.status, r.body.error?.code]).toEqual([ref, 404, 'resource_missing']);
    }
    expect(await traces(m)).toMatchObject({ versions: 0, staged: 0 });
  });
});

describe('model imports without a worker', () => {
  it('answers 503 no_worker_available with Retry-After when no worker can check the import, storing nothing', async () => {
    await worker?.stop();
    worker = null;
    const m = await newModel('no-worker');
    const before = await traces(m);
    const r = await t.api.post(`/v1/models/${m}/versions`, { model: copy(downloaded) });
    expect([r.status, r.body.error?.code]).toEqual([503, 'no_worker_available']);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await traces(m)).toEqual(before);
  });

  it('waits at most IMPORT_CHECK_TIMEOUT_MS for a worker that heartbeats but never answers, and limits checks in flight per tenant (429)', async () => {
    const api = await startApi({ IMPORT_CHECK_TIMEOUT_MS: '1500', IMPORT_CHECKS_PER_TENANT: '1' });
    const id = `silent-${Date.now()}`;
    await db.pool.query(
      `INSERT INTO worker_heartbeats (id, host, pid, backend, gpu, concurrency, current_jobs, started_at, last_seen_at) VALUES ($1, 'test', 1, 'none', false, 1, '{}', now(), now())`,
      [id],
    );
    try {
      const m = await newModel('silent-worker');
      const before = await traces(m);
      const started = Date.now();
      const [a, b] = await Promise.all(
        [0, 1].map(() =>
          fetch(`${api.url}/v1/models/${m}/versions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${t.key.secret}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: copy(downloaded) }),
          }),
        ),
      );
      const statuses = [a.status, b.status].sort();
      expect(statuses).toEqual([429, 503]);
      expect(Date.now() - started).toBeLessThan(10_000);
      const refused = a.status === 429 ? a : b;
      expect((await refused.json()).error.code).toBe('import_checks_in_flight');
      expect(refused.headers.get('retry-after')).toBeTruthy();
      expect(await traces(m)).toEqual(before);
    } finally {
      await db.pool.query('DELETE FROM worker_heartbeats WHERE id = $1', [id]);
      await api.stop();
    }
  });
});

/** An import body whose first layer's config nests `depth` objects (a stack-depth attack on the checks), as text. */
function nestedConfig(depth: number): string {
  const text = JSON.stringify({ model: foreign(), ...foreignMeta });
  return text.replace('"units":', `"extra":${'{"x":'.repeat(depth)}{}${'}'.repeat(depth)},"units":`);
}
