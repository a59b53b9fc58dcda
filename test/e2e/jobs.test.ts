import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { blobRows, keywordTexts, linearRows } from '../../libs/ml/src/synthetic.js';
import { createTenant, sleep, type TenantFixture, until } from '../support/factories.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// Jobs end to end over HTTP: the real API, a real worker process (TF.js on wasm in its sandboxed
// child), PostgreSQL, Redis and BullMQ.
let server: RunningApi;
let worker: RunningProcess;
let t: TenantFixture;

beforeAll(async () => {
  server = await startApi();
  worker = await startWorker({ TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '2' });
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000, max_concurrent_jobs: 4 } });
}, 60_000);
afterAll(async () => {
  await worker?.stop();
  await server?.stop();
});

const wait = { headers: { Prefer: 'wait=60' } };
const strip = (rows: Array<Record<string, unknown>>, label: string) => rows.map(({ [label]: _l, ...x }) => x);

async function trainEvaluateInfer(
  task: string,
  rows: Array<Record<string, unknown>>,
  opts: { label?: string; text_field?: string; epochs: number },
) {
  const name = `m-${task}-${Date.now()}`;
  const ds = await t.api.post('/v1/datasets', {
    name,
    task,
    records: rows,
    ...(opts.label ? { label: opts.label } : {}),
    ...(opts.text_field ? { text_field: opts.text_field } : {}),
  });
  expect(ds.status).toBe(201);
  await t.api.post('/v1/models', { name, task });
  const trained = await t.api.post(
    '/v1/jobs',
    { type: 'training', model: name, dataset: ds.body.id, hyperparameters: { epochs: opts.epochs, seed: 3 } },
    wait,
  );
  expect([trained.status, trained.body.status, trained.body.error]).toEqual([200, 'succeeded', null]);
  expect(trained.body).toMatchObject({ version: 1, attempts: 1, backend: 'wasm', progress: { percent: 100 } });
  expect(trained.body.compute_seconds).toBeGreaterThan(0);
  const version = await t.api.get(`/v1/models/${name}/versions/1`);
  expect(version.body).toMatchObject({ training_job_id: trained.body.id, dataset_id: ds.body.id, backend: 'wasm' });
  const evaluated = await t.api.post('/v1/jobs', { type: 'evaluation', model: name, dataset: ds.body.id }, wait);
  expect([evaluated.status, evaluated.body.status]).toEqual([200, 'succeeded']);
  const inputs = strip(rows.slice(0, 5), opts.label ?? 'label');
  const inferred = await t.api.post('/v1/jobs', { type: 'inference', model: name, inputs, explain: true }, wait);
  expect([inferred.status, inferred.body.status]).toEqual([200, 'succeeded']);
  expect(inferred.body.result.predictions).toHaveLength(5);
  expect(inferred.body.result.explanations).toHaveLength(5);
  for (const p of inferred.body.result.predictions) expect(p.version).toBe(1);
  return { name, evaluated: evaluated.body, inferred: inferred.body, dataset: ds.body.id };
}

describe('train → version → evaluate → infer', () => {
  it('classification', async () => {
    const { evaluated, inferred } = await trainEvaluateInfer('classification', blobRows(300, { features: 4, classes: 3, seed: 5 }), {
      epochs: 15,
    });
    const m = evaluated.result.metrics;
    expect(m.accuracy).toBeGreaterThan(0.8);
    expect(Object.keys(m)).toEqual(expect.arrayContaining(['accuracy', 'loss', 'macro_f1', 'per_class', 'confusion_matrix']));
    expect(m.confusion_matrix.labels).toEqual(['class_a', 'class_b', 'class_c']);
    expect(inferred.result.predictions[0]).toHaveProperty('label');
    expect(Object.keys(inferred.result.predictions[0].probabilities)).toHaveLength(3);
  });

  it('regression', async () => {
    const { rows } = linearRows(300, { features: 3, seed: 2, noise: 0.01 });
    const { evaluated, inferred } = await trainEvaluateInfer('regression', rows, { label: 'y', epochs: 30 });
    expect(Object.keys(evaluated.result.metrics)).toEqual(expect.arrayContaining(['mse', 'rmse', 'mae', 'r2']));
    expect(evaluated.result.metrics.r2).toBeGreaterThan(0.8);
    expect(typeof inferred.result.predictions[0].value).toBe('number');
  });

  it('text classification', async () => {
    const { evaluated, inferred } = await trainEvaluateInfer('text-classification', keywordTexts(300, { classes: 2, seed: 4 }), {
      label: 'topic',
      text_field: 'text',
      epochs: 12,
    });
    expect(evaluated.result.metrics.accuracy).toBeGreaterThan(0.8);
    expect(Array.isArray(inferred.result.explanations[0])).toBe(true);
    expect(inferred.result.explanations[0][0]).toHaveProperty('token');
  });
});

describe('watching a job', () => {
  it('streams every event in order over SSE, from queued to succeeded', async () => {
    const rows = blobRows(200, { features: 4, classes: 2, seed: 9 });
    const ds = (await t.api.post('/v1/datasets', { name: 'sse', task: 'classification', records: rows })).body;
    await t.api.post('/v1/models', { name: 'sse', task: 'classification' });
    const job = (await t.api.post('/v1/jobs', { type: 'training', model: 'sse', dataset: ds.id, hyperparameters: { epochs: 6 } })).body;
    const res = await fetch(`${server.url}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${t.key.secret}` } });
    const text = await res.text(); // ends when the job does
    const events = text
      .split('\n\n')
      .filter((b) => b.startsWith('id:'))
      .map((b) => ({
        id: Number(/id: (\d+)/.exec(b)![1]),
        type: /event: (.*)/.exec(b)![1],
        data: JSON.parse(/data: (.*)/.exec(b)![1]).data,
      }));
    expect(events.map((e) => e.type)).toEqual(['job.queued', 'job.started', ...Array(6).fill('job.progress'), 'job.succeeded']);
    expect(events.filter((e) => e.type === 'job.progress').map((e) => e.data.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 1; i < events.length; i++) expect(events[i].id).toBeGreaterThan(events[i - 1].id);
    const history = await t.api.get(`/v1/jobs/${job.id}/events`);
    expect(history.body.data.map((e: { type: string }) => e.type)).toEqual(events.map((e) => e.type));
  });

  it('cancels a running training within two seconds', async () => {
    const rows = blobRows(3000, { features: 8, classes: 3, seed: 1 });
    const ds = (await t.api.post('/v1/datasets', { name: 'long', task: 'classification', records: rows })).body;
    await t.api.post('/v1/models', { name: 'long', task: 'classification' });
    const job = (
      await t.api.post('/v1/jobs', { type: 'training', model: 'long', dataset: ds.id, hyperparameters: { epochs: 500, batch_size: 16 } })
    ).body;
    // in the epoch loop: a cancel of a queued job would pass without any worker stopping anything
    await until(
      'the training in its epochs',
      async () => {
        const row = (await t.api.get(`/v1/jobs/${job.id}`)).body;
        return row.status === 'running' && (row.progress?.epoch ?? 0) >= 1;
      },
      60_000,
    );
    const asked = Date.now();
    const c = await t.api.post(`/v1/jobs/${job.id}/cancel`);
    expect(c.status).toBe(200);
    await until('the training canceled', async () => (await t.api.get(`/v1/jobs/${job.id}`)).body.status === 'canceled', 10_000);
    expect(Date.now() - asked).toBeLessThan(2_000);
    expect((await t.api.get('/v1/models/long/versions')).body.data).toEqual([]);
  });
});

describe('quotas while running', () => {
  it('never runs more of a tenant’s jobs at once than max_concurrent_jobs, and says why the others wait', async () => {
    const u = await createTenant(server.url, { quotas: { requests_per_minute: 100_000, max_concurrent_jobs: 1 } });
    const rows = blobRows(600, { features: 4, classes: 2, seed: 30 });
    const ds = (await u.api.post('/v1/datasets', { name: 'cap', task: 'classification', records: rows })).body;
    await u.api.post('/v1/models', { name: 'cap', task: 'classification' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await u.api.post('/v1/jobs', { type: 'training', model: 'cap', dataset: ds.id, hyperparameters: { epochs: 8 } })).body.id);
    let maxRunning = 0;
    let sawLimit = false;
    for (let i = 0; i < 600; i++) {
      const jobs = (await u.api.get('/v1/jobs?limit=10')).body.data as Array<{ status: string; waiting_for: string | null }>;
      maxRunning = Math.max(maxRunning, jobs.filter((j) => j.status === 'running').length);
      if (jobs.some((j) => j.waiting_for === 'tenant_concurrency_limit')) sawLimit = true;
      if (jobs.every((j) => j.status === 'succeeded')) break;
      await sleep(50);
    }
    expect(maxRunning).toBe(1);
    expect(sawLimit).toBe(true);
    for (const id of ids) {
      const j = (await u.api.get(`/v1/jobs/${id}`)).body;
      expect([j.status, j.attempts]).toEqual(['succeeded', 1]);
    }
    expect((await u.api.get('/v1/models/cap/versions')).body.data).toHaveLength(3);
  });
});

describe('POST /v1/models/{id}/predict', () => {
  it('answers inline under Prefer: wait, naming the version, with the same predictions as an inference job', async () => {
    const rows = blobRows(200, { features: 4, classes: 2, seed: 21 });
    const ds = (await t.api.post('/v1/datasets', { name: 'p', task: 'classification', records: rows })).body;
    await t.api.post('/v1/models', { name: 'p', task: 'classification' });
    await t.api.post('/v1/jobs', { type: 'training', model: 'p', dataset: ds.id, hyperparameters: { epochs: 5 } }, wait);
    const inputs = strip(rows.slice(0, 3), 'label');
    const r = await t.api.post('/v1/models/p/predict', { inputs, explain: true }, wait);
    expect(r.status).toBe(200);
    expect(r.body.predictions).toHaveLength(3);
    expect(r.body.predictions[0].version).toBe(1);
    expect(r.body.explanations).toHaveLength(3);
    const job = await t.api.post('/v1/jobs', { type: 'inference', model: 'p', inputs }, wait);
    expect(job.body.result.predictions.map((x: { label: string }) => x.label)).toEqual(
      r.body.predictions.map((x: { label: string }) => x.label),
    );
    const queued = await t.api.post('/v1/models/p/predict', { inputs });
    expect(queued.status).toBe(202);
    expect(queued.headers.get('location')).toBe(`/v1/jobs/${queued.body.id}`);
  });

  it('pages a large inference output at /v1/jobs/{id}/output', async () => {
    const rows = blobRows(2500, { features: 4, classes: 2, seed: 22 });
    const ds = (await t.api.post('/v1/datasets', { name: 'big-out', task: 'classification', records: rows })).body;
    await t.api.post('/v1/models', { name: 'big-out', task: 'classification' });
    await t.api.post('/v1/jobs', { type: 'training', model: 'big-out', dataset: ds.id, hyperparameters: { epochs: 2 } }, wait);
    const job = await t.api.post('/v1/jobs', { type: 'inference', model: 'big-out', dataset: ds.id }, wait);
    expect(job.body.status).toBe('succeeded');
    let total = 0;
    let page = 0;
    for (;;) {
      const out = await t.api.get(`/v1/jobs/${job.body.id}/output?page=${page}`);
      expect(out.status).toBe(200);
      total += out.body.predictions.length;
      if (!out.body.has_more) break;
      page++;
    }
    expect(total).toBe(2500);
    expect(page).toBeGreaterThan(0);
  });
});
