import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuditRepository, Database, ModelRegistry, versionDataOf } from '@app/db';
import { initBackend, predict, train, type TrainResult } from '@app/ml';
import { createHash } from 'node:crypto';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

let server: RunningApi;
// Imports are loaded once by a worker before they become versions.
let worker: RunningProcess;
let t: TenantFixture;
let db: Database;
let registry: ModelRegistry;
let trained: TrainResult;
const rows = blobRows(120, { features: 4, classes: 3, seed: 7 });

beforeAll(async () => {
  server = await startApi();
  worker = await startWorker({ TF_BACKEND: 'wasm' });
  t = await createTenant(server.url, { quotas: { requests_per_minute: 10_000 } });
  db = new Database(process.env.DATABASE_URL!, 2);
  registry = new ModelRegistry(db, new AuditRepository(db));
  await initBackend('cpu');
  trained = await train({ spec: { task: 'classification', label: 'label' }, rows, hyperparameters: { epochs: 3, seed: 1 } });
});
afterAll(async () => {
  await db?.close();
  await worker?.stop();
  await server?.stop();
});

/** What the job engine will do when a training job succeeds: the registry's internal call. */
async function versionFromTraining(modelId: string, jobId: string, tenantId = t.id) {
  return registry.createFromTraining(tenantId, modelId, jobId, versionDataOf(trained));
}

describe('models', () => {
  it('creates a model, finds it by id and by name, and refuses a taken name with 409', async () => {
    const m = await t.api.post('/v1/models', { name: 'churn', task: 'classification', description: 'who leaves' });
    expect(m.status).toBe(201);
    expect(m.body).toMatchObject({ object: 'model', name: 'churn', task: 'classification', latest_version: null, aliases: {} });
    expect((await t.api.get(`/v1/models/${m.body.id}`)).body).toEqual(m.body);
    expect((await t.api.get('/v1/models/churn')).body.id).toBe(m.body.id);
    const again = await t.api.post('/v1/models', { name: 'churn', task: 'regression' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'model_name_taken', param: 'name' });
    expect((await t.api.get('/v1/models?task=classification')).body.data.map((x: { id: string }) => x.id)).toContain(m.body.id);
  });

  it('numbers versions 1, 2, 3 and writes one version per training job, however often it is stored', async () => {
    const m = (await t.api.post('/v1/models', { name: 'numbered', task: 'classification' })).body;
    const first = await versionFromTraining(m.id, 'job_one');
    const repeat = await versionFromTraining(m.id, 'job_one');
    expect(first.created).toBe(true);
    expect(repeat.created).toBe(false);
    expect(repeat.version.id).toBe(first.version.id);
    const [a, b] = await Promise.all([versionFromTraining(m.id, 'job_two'), versionFromTraining(m.id, 'job_three')]);
    expect([a.version.number, b.version.number].sort()).toEqual([2, 3]);
    const list = await t.api.get(`/v1/models/${m.id}/versions`);
    expect(list.body.data.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
    const v1 = await t.api.get(`/v1/models/numbered/versions/1`);
    expect(v1.body).toMatchObject({
      object: 'model_version',
      version: 1,
      training_job_id: 'job_one',
      source: 'training',
      backend: 'cpu',
      parameters: trained.parameters,
      sha256: trained.sha256,
    });
    expect(v1.body.labels).toEqual(['class_a', 'class_b', 'class_c']);
    expect(v1.body.metrics.accuracy).toBeGreaterThan(0);
    const model = await t.api.get(`/v1/models/${m.id}`);
    expect(model.body.latest_version).toBe(3);
    expect(model.body.aliases.latest).toEqual([{ version: 3, weight: 100 }]);
  });

  it('downloads an artifact whose checksum matches the version, and that predicts as trained', async () => {
    const m = (await t.api.post('/v1/models', { name: 'download', task: 'classification' })).body;
    await versionFromTraining(m.id, 'job_download');
    const r = await fetch(`${server.url}/v1/models/${m.id}/versions/1/artifact`, { headers: { authorization: `Bearer ${t.key.secret}` } });
    expect(r.status).toBe(200);
    const bytes = Buffer.from(await r.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(trained.sha256);
    expect(r.headers.get('x-checksum-sha256')).toBe(trained.sha256);
    const json = JSON.parse(bytes.toString('utf8'));
    expect(json.format).toBe('layers-model');
    expect(typeof json.weightData).toBe('string');
    const inputs = rows.slice(0, 5).map(({ label: _l, ...x }) => x);
    expect((await predict(bytes, inputs)).predictions).toEqual((await predict(trained.artifact, inputs)).predictions);
  });

  it('imports a downloaded model as a new version of another model, which predicts identically', async () => {
    const src = (await t.api.post('/v1/models', { name: 'source', task: 'classification' })).body;
    await versionFromTraining(src.id, 'job_import_src');
    const json = JSON.parse(
      Buffer.from(
        await (
          await fetch(`${server.url}/v1/models/${src.id}/versions/1/artifact`, { headers: { authorization: `Bearer ${t.key.secret}` } })
        ).arrayBuffer(),
      ).toString(),
    );
    const dst = (await t.api.post('/v1/models', { name: 'copy', task: 'classification' })).body;
    const imported = await t.api.post(`/v1/models/${dst.id}/versions`, { model: json });
    expect(imported.status).toBe(201);
    expect(imported.body).toMatchObject({
      version: 1,
      source: 'import',
      training_job_id: null,
      parameters: trained.parameters,
      labels: ['class_a', 'class_b', 'class_c'],
    });
    const back = Buffer.from(
      await (
        await fetch(`${server.url}/v1/models/copy/versions/1/artifact`, { headers: { authorization: `Bearer ${t.key.secret}` } })
      ).arrayBuffer(),
    );
    expect(createHash('sha256').update(back).digest('hex')).toBe(imported.body.sha256);
    const inputs = rows.slice(0, 8).map(({ label: _l, ...x }) => x);
    expect((await predict(back, inputs)).predictions).toEqual((await predict(trained.artifact, inputs)).predictions);
  });

  it('imports a model.json trained elsewhere with its input_schema and labels', async () => {
    const json = JSON.parse(trained.artifact.toString('utf8'));
    delete json.userDefinedMetadata;
    const m = (await t.api.post('/v1/models', { name: 'foreign', task: 'classification' })).body;
    const r = await t.api.post(`/v1/models/${m.id}/versions`, {
      model: json,
      input_schema: { label: 'label', features: ['x1', 'x2', 'x3', 'x4'] },
      labels: ['class_a', 'class_b', 'class_c'],
    });
    expect(r.status).toBe(201);
    expect(r.body.input_schema.features.map((f: { name: string }) => f.name)).toEqual(['x1', 'x2', 'x3', 'x4']);
  });

  it('refuses a broken or oversized upload with a clear 4xx, storing nothing', async () => {
    const json = JSON.parse(trained.artifact.toString('utf8'));
    const m = (await t.api.post('/v1/models', { name: 'broken', task: 'classification' })).body;
    const meta = { input_schema: { label: 'label', features: ['x1', 'x2', 'x3', 'x4'] }, labels: ['class_a', 'class_b', 'class_c'] };
    const { weightData: _w, userDefinedMetadata: _u, ...noWeights } = json;
    const missing = await t.api.post(`/v1/models/${m.id}/versions`, { model: noWeights, ...meta });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('weightData is missing');
    const truncated = await t.api.post(`/v1/models/${m.id}/versions`, {
      model: { ...noWeights, weightData: json.weightData.slice(0, 40) },
      ...meta,
    });
    expect(truncated.status).toBe(400);
    expect(truncated.body.error.message).toMatch(/bytes/);
    const wide = await t.api.post(`/v1/models/${m.id}/versions`, {
      model: noWeights.modelTopology ? { ...noWeights, weightData: json.weightData } : noWeights,
      input_schema: { label: 'label', features: ['x1', 'x2'] },
      labels: meta.labels,
    });
    expect(wide.status).toBe(400);
    const small = await createTenant(server.url, { quotas: { max_model_parameters: 10 } });
    const sm = (await small.api.post('/v1/models', { name: 'tiny', task: 'classification' })).body;
    const tooBig = await small.api.post(`/v1/models/${sm.id}/versions`, { model: json });
    expect(tooBig.status).toBe(403);
    expect(tooBig.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_model_parameters' });
    const wrongTask = await t.api.post('/v1/models', { name: 'reg', task: 'regression' });
    const mismatch = await t.api.post(`/v1/models/${wrongTask.body.id}/versions`, { model: json });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.code).toBe('task_mismatch');
    expect((await t.api.get(`/v1/models/${m.id}/versions`)).body.data).toEqual([]);
  });
});

describe('aliases and traffic splits', () => {
  it('points an alias at a version, splits traffic, validates, and deletes', async () => {
    const m = (await t.api.post('/v1/models', { name: 'aliased', task: 'classification' })).body;
    await versionFromTraining(m.id, 'job_alias_1');
    await versionFromTraining(m.id, 'job_alias_2');
    const prod = await t.api.call('PUT', `/v1/models/${m.id}/aliases/prod`, { body: { version: 1 } });
    expect(prod.status).toBe(200);
    expect(prod.body).toMatchObject({ object: 'model_alias', name: 'prod', versions: [{ version: 1, weight: 100 }] });
    const split = await t.api.call('PUT', `/v1/models/${m.id}/aliases/canary`, {
      body: {
        versions: [
          { version: 1, weight: 90 },
          { version: 2, weight: 10 },
        ],
      },
    });
    expect(split.status).toBe(200);
    const model = await t.api.get(`/v1/models/${m.id}`);
    expect(model.body.aliases).toEqual({
      latest: [{ version: 2, weight: 100 }],
      canary: [
        { version: 1, weight: 90 },
        { version: 2, weight: 10 },
      ],
      prod: [{ version: 1, weight: 100 }],
    });
    const refusals: Array<[unknown, string, string]> = [
      [
        {
          versions: [
            { version: 1, weight: 50 },
            { version: 2, weight: 40 },
          ],
        },
        'alias_weights_invalid',
        'versions',
      ],
      [
        {
          versions: [
            { version: 1, weight: 50 },
            { version: 1, weight: 50 },
          ],
        },
        'alias_weights_invalid',
        'versions',
      ],
      [{ version: 9 }, 'version_missing', 'version'],
      [
        {
          versions: [
            { version: 1, weight: 50 },
            { version: 7, weight: 50 },
          ],
        },
        'version_missing',
        'versions[1].version',
      ],
      [{ version: 1, versions: [{ version: 1, weight: 100 }] }, 'parameter_invalid', 'version'],
      [
        {
          versions: [
            { version: 1, weight: 0 },
            { version: 2, weight: 100 },
          ],
        },
        'parameter_invalid',
        'versions.0.weight',
      ],
    ];
    for (const [body, code, param] of refusals) {
      const r = await t.api.call('PUT', `/v1/models/${m.id}/aliases/prod`, { body });
      expect([JSON.stringify(body), r.status, r.body.error.code, r.body.error.param]).toEqual([JSON.stringify(body), 400, code, param]);
    }
    expect((await t.api.call('PUT', `/v1/models/${m.id}/aliases/latest`, { body: { version: 1 } })).body.error.code).toBe('alias_reserved');
    expect((await t.api.call('PUT', `/v1/models/${m.id}/aliases/Bad Name`, { body: { version: 1 } })).status).toBe(400);
    expect((await t.api.get(`/v1/models/${m.id}`)).body.aliases.prod).toEqual([{ version: 1, weight: 100 }]);
    expect((await t.api.delete(`/v1/models/${m.id}/aliases/prod`)).status).toBe(200);
    expect((await t.api.delete(`/v1/models/${m.id}/aliases/prod`)).status).toBe(404);
    expect((await t.api.delete(`/v1/models/${m.id}/aliases/latest`)).status).toBe(400);
  });
});

describe('tenant isolation on models', () => {
  it('answers another tenant’s model, by id or by name, exactly as an unknown one (404) on every route', async () => {
    const m = (await t.api.post('/v1/models', { name: 'secret-model', task: 'classification' })).body;
    await versionFromTraining(m.id, 'job_isolation');
    const other = await createTenant(server.url);
    const routes: Array<[string, string, unknown?]> = [
      ['GET', `/v1/models/${m.id}`],
      ['GET', '/v1/models/secret-model'],
      ['DELETE', `/v1/models/${m.id}`],
      ['GET', `/v1/models/${m.id}/versions`],
      ['GET', `/v1/models/${m.id}/versions/1`],
      ['GET', `/v1/models/${m.id}/versions/1/artifact`],
      ['POST', `/v1/models/${m.id}/versions`, { model: JSON.parse(trained.artifact.toString()) }],
      ['PUT', `/v1/models/${m.id}/aliases/prod`, { version: 1 }],
      ['DELETE', `/v1/models/${m.id}/aliases/prod`],
    ];
    for (const [method, path, body] of routes) {
      const r = await other.api.call(method, path, body ? { body } : {});
      expect([method, path, r.status, r.body.error?.code]).toEqual([method, path, 404, 'resource_missing']);
    }
    expect((await other.api.get('/v1/models')).body.data).toEqual([]);
    // The other tenant may use the same name for its own model.
    expect((await other.api.post('/v1/models', { name: 'secret-model', task: 'regression' })).status).toBe(201);
    expect((await t.api.get(`/v1/models/${m.id}/versions/1`)).status).toBe(200);
  });

  it('deletes a model with its versions and gives their storage back', async () => {
    const u = await createTenant(server.url);
    const m = (await u.api.post('/v1/models', { name: 'gone', task: 'classification' })).body;
    await versionFromTraining(m.id, 'job_gone', u.id);
    expect((await u.api.get('/v1/me')).body.usage.storage_bytes).toBe(trained.artifact.length);
    expect((await u.api.delete('/v1/models/gone')).body).toEqual({ id: m.id, object: 'model', deleted: true });
    expect((await u.api.get(`/v1/models/${m.id}`)).status).toBe(404);
    expect((await u.api.get('/v1/me')).body.usage.storage_bytes).toBe(0);
  });
});
