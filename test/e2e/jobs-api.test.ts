import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createTenant, sleep, type TenantFixture } from '../support/factories.js';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, startApi } from '../support/processes.js';

// The API side of jobs, with no worker running: submission, validation, quotas, queue position,
// cancellation of queued jobs, events and streams. test/e2e/jobs.test.ts runs them with workers.
let server: RunningApi;
let t: TenantFixture;
let datasetId: string;

beforeAll(async () => {
  // No worker runs in this file: forget heartbeats that workers killed by earlier files left behind.
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  await db.query('DELETE FROM worker_heartbeats');
  await db.end();
  server = await startApi();
  t = await createTenant(server.url, { quotas: { requests_per_minute: 10_000 } });
  const ds = await t.api.post('/v1/datasets', { name: 'blobs', task: 'classification', records: blobs });
  datasetId = ds.body.id;
  await t.api.post('/v1/models', { name: 'clf', task: 'classification' });
});
afterAll(() => server?.stop());

const training = (extra: Record<string, unknown> = {}) => ({
  type: 'training',
  model: 'clf',
  dataset: datasetId,
  hyperparameters: { epochs: 2 },
  ...extra,
});

describe('POST /v1/jobs', () => {
  it('accepts a training job: 202, queued, durable, with its first event and a Location', async () => {
    const r = await t.api.post('/v1/jobs', training({ metadata: { run: 'a' } }));
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/jobs/${r.body.id}`);
    expect(r.body).toMatchObject({
      object: 'job',
      type: 'training',
      status: 'queued',
      dataset_id: datasetId,
      metadata: { run: 'a' },
      attempts: 0,
      waiting_for: 'capacity',
    });
    expect(r.body.queue_position).toBeGreaterThanOrEqual(1);
    const events = await t.api.get(`/v1/jobs/${r.body.id}/events`);
    expect(events.body.data.map((e: { type: string }) => e.type)).toEqual(['job.queued']);
    expect((await t.api.get(`/v1/jobs/${r.body.id}`)).body.id).toBe(r.body.id);
  });

  it("gives queue positions in the fair scheduler's order", async () => {
    const tenants = await Promise.all([createTenant(server.url), createTenant(server.url)]);
    const [u, v] = await Promise.all(
      tenants.map(async (x) => {
        const ds = (await x.api.post('/v1/datasets', { name: 'b', task: 'classification', records: blobs })).body.id;
        await x.api.post('/v1/models', { name: 'm', task: 'classification' });
        return { api: x.api, job: { type: 'training', model: 'm', dataset: ds } };
      }),
    );
    const a = await u.api.post('/v1/jobs', u.job);
    const b = await u.api.post('/v1/jobs', u.job);
    // A tenant's own jobs keep their order.
    expect(b.body.queue_position).toBeGreaterThan(a.body.queue_position);
    // Another tenant's first job takes its turn before u's second: b moves back by one.
    const c = await v.api.post('/v1/jobs', v.job);
    expect(c.body.queue_position).toBeLessThan(b.body.queue_position + 1);
    expect((await u.api.get(`/v1/jobs/${b.body.id}`)).body.queue_position).toBe(b.body.queue_position + 1);
  });

  it('says a GPU job waits for a GPU while no GPU worker is online', async () => {
    const r = await t.api.post('/v1/jobs', training({ resources: { accelerator: 'gpu' } }));
    expect(r.body).toMatchObject({ status: 'queued', waiting_for: 'gpu', resources: { accelerator: 'gpu' } });
  });

  it('refuses what cannot run, naming the problem', async () => {
    await t.api.post('/v1/models', { name: 'reg', task: 'regression' });
    const cases: Array<[Record<string, unknown>, number, string, string]> = [
      [training({ model: 'nope' }), 404, 'resource_missing', 'model'],
      [training({ dataset: 'ds_doesnotexist00' }), 404, 'resource_missing', 'dataset'],
      [training({ model: 'reg' }), 400, 'task_mismatch', 'dataset'],
      [training({ hyperparameters: { epochs: -1 } }), 400, 'hyperparameters_invalid', 'hyperparameters'],
      [training({ hyperparameters: { colour: 'red' } }), 400, 'hyperparameters_invalid', 'hyperparameters'],
      [training({ base_version: 3 }), 400, 'version_missing', 'base_version'],
      [
        training({ architecture: { class_name: 'Sequential', config: { layers: [{ class_name: 'Conv2D', config: {} }] } } }),
        400,
        'architecture_not_allowed',
        'architecture',
      ],
      [{ type: 'evaluation', model: 'clf', dataset: datasetId }, 400, 'model_not_trained', 'model'],
      [{ type: 'inference', model: 'clf', inputs: [{ x1: 1 }] }, 400, 'model_not_trained', 'model'],
      [{ type: 'clustering', model: 'clf' }, 400, 'parameter_invalid', 'type'],
      [training({ webhook_events: ['sometimes'] }), 400, 'parameter_invalid', 'webhook_events.0'],
      [training({ extra: 1 }), 400, 'parameter_unknown', 'extra'],
    ];
    for (const [body, status, code, param] of cases) {
      const r = await t.api.post('/v1/jobs', body);
      expect([JSON.stringify(body).slice(0, 80), r.status, r.body.error?.code, r.body.error?.param]).toEqual([
        JSON.stringify(body).slice(0, 80),
        status,
        code,
        param,
      ]);
    }
  });

  it('checks inference inputs and versions against the model', async () => {
    const m = (await t.api.post('/v1/models', { name: 'served', task: 'classification' })).body;
    await storeVersion(t.id, m.id, `job_fixture_${Date.now()}`);
    const ok = await t.api.post('/v1/jobs', { type: 'inference', model: 'served', inputs: [{ x1: 1, x2: 2, x3: 3, x4: 4 }] });
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({ type: 'inference', alias: 'latest', version: null });
    const missing = await t.api.post('/v1/jobs', { type: 'inference', model: 'served', inputs: [{ x1: 1, x2: 2, x3: 3 }] });
    expect(missing.body.error).toMatchObject({ code: 'input_invalid', param: 'inputs[0].x4' });
    const both = await t.api.post('/v1/jobs', {
      type: 'inference',
      model: 'served',
      inputs: [{ x1: 1, x2: 2, x3: 3, x4: 4 }],
      dataset: datasetId,
    });
    expect(both.body.error.param).toBe('inputs');
    const v9 = await t.api.post('/v1/jobs', { type: 'evaluation', model: 'served', dataset: datasetId, version: 9 });
    expect(v9.body.error).toMatchObject({ code: 'version_missing', param: 'version' });
    const alias = await t.api.post('/v1/jobs', { type: 'evaluation', model: 'served', dataset: datasetId, alias: 'prod' });
    expect(alias.body.error).toMatchObject({ code: 'alias_missing', param: 'alias' });
  });

  it('refuses past max_queued_jobs with 429 and past monthly_compute_seconds with 403', async () => {
    const u = await createTenant(server.url, { quotas: { max_queued_jobs: 2 } });
    const ds = (await u.api.post('/v1/datasets', { name: 'b', task: 'classification', records: blobs })).body.id;
    await u.api.post('/v1/models', { name: 'm', task: 'classification' });
    const body = { type: 'training', model: 'm', dataset: ds };
    const results = await Promise.all([1, 2, 3, 4].map(() => u.api.post('/v1/jobs', body)));
    expect(results.map((r) => r.status).sort()).toEqual([202, 202, 429, 429]);
    const refused = results.find((r) => r.status === 429)!;
    expect(refused.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_queued_jobs' });
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect((await u.api.get('/v1/jobs')).body.data).toHaveLength(2);

    // The highest quota an admin may set is still a quota, not a server error.
    const huge = await createTenant(server.url, { quotas: { max_queued_jobs: Number.MAX_SAFE_INTEGER } });
    const hds = (await huge.api.post('/v1/datasets', { name: 'b', task: 'classification', records: blobs })).body.id;
    await huge.api.post('/v1/models', { name: 'm', task: 'classification' });
    expect((await huge.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: hds })).status).toBe(202);

    const broke = await createTenant(server.url, { quotas: { monthly_compute_seconds: 0 } });
    const ds2 = (await broke.api.post('/v1/datasets', { name: 'b', task: 'classification', records: blobs })).body.id;
    await broke.api.post('/v1/models', { name: 'm', task: 'classification' });
    const r = await broke.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: ds2 });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('monthly_compute_seconds');
  });

  it('checks a custom architecture against the data and max_model_parameters before queueing', async () => {
    const dense = (name: string, units: number, extra: Record<string, unknown> = {}) => ({
      class_name: 'Dense',
      config: { name, units, activation: 'relu', ...extra },
    });
    const arch = (hidden: number) => ({
      class_name: 'Sequential',
      config: { name: 'm', layers: [dense('h', hidden, { batch_input_shape: [null, 4] }), dense('out', 3, { activation: 'softmax' })] },
    });
    const fits = await t.api.post('/v1/jobs', training({ architecture: arch(16) }));
    expect(fits.status).toBe(202);
    await t.api.post(`/v1/jobs/${fits.body.id}/cancel`);
    const small = await createTenant(server.url, { quotas: { max_model_parameters: 100 } });
    const ds = (await small.api.post('/v1/datasets', { name: 'b', task: 'classification', records: blobs })).body.id;
    await small.api.post('/v1/models', { name: 'm', task: 'classification' });
    const tooBig = await small.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: ds, architecture: arch(64) });
    expect(tooBig.status).toBe(403);
    expect(tooBig.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_model_parameters' });
    const wrongWidth = await t.api.post(
      '/v1/jobs',
      training({
        architecture: {
          class_name: 'Sequential',
          config: { name: 'm', layers: [dense('h', 8, { batch_input_shape: [null, 7] }), dense('out', 3, { activation: 'softmax' })] },
        },
      }),
    );
    expect(wrongWidth.status).toBe(400);
    expect(wrongWidth.body.error.param).toBe('architecture');
  });

  it('honours Idempotency-Key: a retried submission is the same job', async () => {
    const headers = { 'Idempotency-Key': `train-${Date.now()}` };
    const a = await t.api.post('/v1/jobs', training(), { headers });
    const b = await t.api.post('/v1/jobs', training(), { headers });
    expect(b.status).toBe(202);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.headers.get('location')).toBe(`/v1/jobs/${a.body.id}`);
    expect(b.body.id).toBe(a.body.id);
    const other = await t.api.post('/v1/jobs', training({ hyperparameters: { epochs: 3 } }), { headers });
    expect(other.status).toBe(422);
  });

  it('answers 202 with Location when Prefer: wait runs out before the job ends', async () => {
    const started = Date.now();
    const r = await t.api.post('/v1/jobs', training(), { headers: { Prefer: 'wait=1' } });
    expect(r.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(r.body.status).toBe('queued');
    expect(r.headers.get('location')).toBe(`/v1/jobs/${r.body.id}`);
  });
});

describe('cancel, events and stream of a queued job', () => {
  it('cancels a queued job: it never starts; a second cancel is a 409', async () => {
    const j = (await t.api.post('/v1/jobs', training())).body;
    const c = await t.api.post(`/v1/jobs/${j.id}/cancel`);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'canceled', cancel_requested: true });
    expect(c.body.finished_at).not.toBeNull();
    expect((await t.api.post(`/v1/jobs/${j.id}/cancel`)).status).toBe(409);
    const events = await t.api.get(`/v1/jobs/${j.id}/events`);
    expect(events.body.data.map((e: { type: string }) => e.type)).toEqual(['job.queued', 'job.canceled']);
  });

  it('streams a job’s history as Server-Sent Events and closes after the terminal event', async () => {
    const j = (await t.api.post('/v1/jobs', training())).body;
    const res = await fetch(`${server.url}/v1/jobs/${j.id}/stream`, { headers: { authorization: `Bearer ${t.key.secret}` } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const read = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
      }
    })();
    await sleep(300);
    await t.api.post(`/v1/jobs/${j.id}/cancel`);
    await read; // the server closes the stream after job.canceled
    const events = text.split('\n\n').filter((b) => b.startsWith('id:'));
    expect(events.map((b) => /event: (.*)/.exec(b)![1])).toEqual(['job.queued', 'job.canceled']);
    expect(JSON.parse(/data: (.*)/.exec(events[1])![1])).toMatchObject({ object: 'job_event', job_id: j.id, type: 'job.canceled' });
  });

  it('resumes a stream after Last-Event-ID', async () => {
    const j = (await t.api.post('/v1/jobs', training())).body;
    await t.api.post(`/v1/jobs/${j.id}/cancel`);
    const res = await fetch(`${server.url}/v1/jobs/${j.id}/stream`, {
      headers: { authorization: `Bearer ${t.key.secret}`, 'last-event-id': '0' },
    });
    const all = await res.text();
    const first = /id: (\d+)/.exec(all)![1];
    const resumed = await (
      await fetch(`${server.url}/v1/jobs/${j.id}/stream`, { headers: { authorization: `Bearer ${t.key.secret}`, 'last-event-id': first } })
    ).text();
    expect(resumed).not.toContain('job.queued');
    expect(resumed).toContain('job.canceled');
  });

  it('lists jobs with filters', async () => {
    const list = await t.api.get('/v1/jobs?type=training&status=canceled&model=clf&limit=100');
    expect(list.body.data.length).toBeGreaterThanOrEqual(3);
    for (const j of list.body.data) expect(j).toMatchObject({ type: 'training', status: 'canceled' });
    expect((await t.api.get('/v1/jobs?status=nonsense')).status).toBe(400);
  });

  it('refuses to delete a dataset or a model that a queued job uses (409)', async () => {
    const j = (await t.api.post('/v1/jobs', training())).body;
    expect((await t.api.delete(`/v1/datasets/${datasetId}`)).body.error.code).toBe('dataset_in_use');
    expect((await t.api.delete('/v1/models/clf')).body.error.code).toBe('model_in_use');
    await t.api.post(`/v1/jobs/${j.id}/cancel`);
  });
});

describe('tenant isolation on jobs', () => {
  it('answers another tenant’s job exactly as an unknown one (404) on every route', async () => {
    const j = (await t.api.post('/v1/jobs', training())).body;
    const other = await createTenant(server.url);
    for (const [method, path] of [
      ['GET', `/v1/jobs/${j.id}`],
      ['GET', `/v1/jobs/${j.id}/events`],
      ['GET', `/v1/jobs/${j.id}/stream`],
      ['POST', `/v1/jobs/${j.id}/cancel`],
    ] as const) {
      const r = await other.api.call(method, path);
      expect([method, path, r.status, r.body.error?.code]).toEqual([method, path, 404, 'resource_missing']);
    }
    expect((await other.api.get('/v1/jobs')).body.data).toEqual([]);
    expect((await other.api.get(`/v1/jobs/${j.id}/output`)).status).toBe(404);
    const foreign = await other.api.post('/v1/jobs', { type: 'training', model: 'clf', dataset: datasetId });
    expect(foreign.status).toBe(404);
    const predict = await other.api.post('/v1/models/served/predict', { inputs: [{ x1: 1, x2: 2, x3: 3, x4: 4 }] });
    expect([predict.status, predict.body.error.code]).toEqual([404, 'resource_missing']);
    expect((await t.api.get(`/v1/jobs/${j.id}`)).body.status).toBe('queued');
    await t.api.post(`/v1/jobs/${j.id}/cancel`);
  });
});
