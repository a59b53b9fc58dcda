import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { adminKey, createTenant, sleep, type TenantFixture } from '../support/factories.js';
import { Api } from '../support/http.js';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// Sync inference end to end: POST /v1/models/{id}/predict under Prefer: wait through the real API,
// the predict queue, real worker processes (batching, the inference child's model cache on wasm),
// PostgreSQL and Redis.
let server: RunningApi;
let worker: RunningProcess | null = null;
let t: TenantFixture;
let modelId: string;
let redis: Redis;

const wait = { headers: { Prefer: 'wait=30' } };
const features = ['x1', 'x2', 'x3', 'x4'];
/** Distinct rows of the blobs problem without their label. */
const rows = blobs.map((r) => Object.fromEntries(features.map((f) => [f, r[f] as number])));

const workerEnv = (extra: Record<string, string> = {}) => ({
  TF_BACKEND: 'wasm',
  PREDICT_BATCH_MAX_ROWS: '64',
  PREDICT_BATCH_DELAY_MS: '5',
  ...extra,
});

beforeAll(async () => {
  server = await startApi();
  worker = await startWorker(workerEnv());
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  modelId = (await t.api.post('/v1/models', { name: 'blobs', task: 'classification' })).body.id;
  // Two versions (the same weights: what matters here is which one answers).
  await storeVersion(t.id, modelId, `job_fixture_a${Date.now()}`);
  await storeVersion(t.id, modelId, `job_fixture_b${Date.now()}`);
  const split = await t.api.call('PUT', '/v1/models/blobs/aliases/canary', {
    body: {
      versions: [
        { version: 1, weight: 90 },
        { version: 2, weight: 10 },
      ],
    },
  });
  expect(split.status).toBe(200);
  redis = new Redis(process.env.REDIS_URL!);
}, 90_000);
afterAll(async () => {
  await redis?.quit();
  await worker?.stop();
  await server?.stop();
});

/** Runs `count` calls with at most `limit` in flight. */
async function bounded<T>(count: number, limit: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await call(i);
      }
    }),
  );
  return out;
}

/** A histogram's total count and the count of observations ≤ `le`, from GET /metrics. */
async function histogram(name: string, le: string): Promise<{ count: number; atMost: number }> {
  const text = (await new Api(server.url, adminKey()).get('/metrics')).text;
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return { count: num(new RegExp(`^${name}_count (\\d+)`, 'm')), atMost: num(new RegExp(`^${name}_bucket\\{le="${le}"\\} (\\d+)`, 'm')) };
}

/** Requests waiting in the predict list, and job rows of the tenant (a refused request leaves neither). */
async function queueTotal(): Promise<number> {
  const waiting = await redis.llen(`{${process.env.REDIS_PREFIX}:predict}:requests`);
  const jobs = await t.api.get('/v1/jobs?type=inference&limit=100');
  return waiting + jobs.body.data.length;
}

describe('POST /v1/models/{id}/predict under Prefer: wait', () => {
  it('answers 200 with the predictions and the version, and the job it records is the one it answered', async () => {
    const inputs = rows.slice(0, 3);
    const r = await t.api.post('/v1/models/blobs/predict', { inputs, metadata: { caller: 'e2e' } }, wait);
    expect(r.status).toBe(200);
    expect(r.headers.get('location')).toBe(`/v1/jobs/${r.body.id}`);
    expect(r.body).toMatchObject({
      object: 'job',
      type: 'inference',
      status: 'succeeded',
      model_id: modelId,
      version: 2,
      alias: 'latest',
      attempts: 1,
      backend: 'wasm',
      error: null,
      metadata: { caller: 'e2e' },
    });
    expect(r.body.predictions).toHaveLength(3);
    for (const p of r.body.predictions) {
      expect(p).toMatchObject({ label: expect.stringMatching(/^class_/), version: 2 });
      expect(Object.keys(p.probabilities)).toHaveLength(3);
    }
    expect(r.body.result).toEqual({ version: 2, predictions: r.body.predictions, total: 3 });
    expect(r.body.compute_seconds).toBeGreaterThan(0);
    expect(r.body.explanations).toBeUndefined();

    const { predictions: _p, ...answered } = r.body;
    const job = await t.api.get(`/v1/jobs/${r.body.id}`);
    expect(job.status).toBe(200);
    expect(job.body).toEqual(answered);
    expect((await t.api.get('/v1/jobs?type=inference&limit=100')).body.data.map((j: { id: string }) => j.id)).toContain(r.body.id);
  });

  it('names a version by number, and explains under explain: true (a score per feature)', async () => {
    const r = await t.api.post('/v1/models/blobs/predict', { inputs: rows.slice(5, 7), version: 1, explain: true }, wait);
    expect(r.status).toBe(200);
    expect([r.body.version, r.body.alias]).toEqual([1, null]);
    expect(r.body.predictions.map((p: { version: number }) => p.version)).toEqual([1, 1]);
    expect(r.body.explanations).toHaveLength(2);
    expect(Object.keys(r.body.explanations[0]).sort()).toEqual(features);
    expect(r.body.result.explanations).toEqual(r.body.explanations);
  });

  it('splits traffic by the alias’s weights: 90/10 over 2,000 requests, within ±4σ of the binomial', async () => {
    const n = 2_000;
    const answers = await bounded(n, 32, (i) =>
      t.api.post('/v1/models/blobs/predict', { inputs: [rows[i % rows.length]], alias: 'canary' }, wait),
    );
    expect(answers.filter((a) => a.status !== 200).map((a) => a.text)).toEqual([]);
    for (const a of answers) {
      expect(a.body.alias).toBe('canary');
      expect(a.body.predictions[0].version).toBe(a.body.version);
    }
    const v2 = answers.filter((a) => a.body.version === 2).length;
    const v1 = answers.filter((a) => a.body.version === 1).length;
    expect(v1 + v2).toBe(n);
    const sigma = Math.sqrt(n * 0.1 * 0.9);
    expect(Math.abs(v2 - n * 0.1)).toBeLessThanOrEqual(4 * sigma);
  }, 120_000);

  it('refuses bad input with a 400 naming the field, and enqueues nothing', async () => {
    const before = await queueTotal();
    const jobsBefore = (await t.api.get('/v1/jobs?type=inference&limit=100')).body.data.length;
    const missing = await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0], { x1: 1, x2: 2, x4: 4 }] }, wait);
    expect([missing.status, missing.body.error.code, missing.body.error.param]).toEqual([400, 'input_invalid', 'inputs[1].x3']);
    const text = await t.api.post('/v1/models/blobs/predict', { inputs: [{ x1: 'one', x2: 2, x3: 3, x4: 4 }] }, wait);
    expect([text.status, text.body.error.param]).toEqual([400, 'inputs[0].x1']);
    const alias = await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0]], alias: 'nope' }, wait);
    expect([alias.status, alias.body.error.code]).toEqual([400, 'alias_missing']);
    const version = await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0]], version: 9 }, wait);
    expect([version.status, version.body.error.code]).toEqual([400, 'version_missing']);
    const both = await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0]], version: 1, alias: 'canary' }, wait);
    expect(both.status).toBe(400);
    expect(await queueTotal()).toBe(before);
    expect((await t.api.get('/v1/jobs?type=inference&limit=100')).body.data.length).toBe(jobsBefore);
  });

  it('answers another tenant’s model exactly as an unknown one (404)', async () => {
    const other = await createTenant(server.url);
    for (const ref of ['blobs', modelId, 'nothing-here']) {
      const r = await other.api.post(`/v1/models/${ref}/predict`, { inputs: [rows[0]] }, wait);
      expect([ref, r.status, r.body.error.code]).toEqual([ref, 404, 'resource_missing']);
    }
  });

  it('replays an answer for a repeated Idempotency-Key', async () => {
    const headers = { ...wait.headers, 'Idempotency-Key': `predict-${Date.now()}` };
    const first = await t.api.post('/v1/models/blobs/predict', { inputs: rows.slice(0, 2) }, { headers });
    const again = await t.api.post('/v1/models/blobs/predict', { inputs: rows.slice(0, 2) }, { headers });
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
  });

  it('serves a new alias split at once (the API’s cached lookup is dropped when the alias changes)', async () => {
    await t.api.call('PUT', '/v1/models/blobs/aliases/pinned', { body: { version: 1 } });
    expect((await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0]], alias: 'pinned' }, wait)).body.version).toBe(1);
    await t.api.call('PUT', '/v1/models/blobs/aliases/pinned', { body: { version: 2 } });
    expect((await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0]], alias: 'pinned' }, wait)).body.version).toBe(2);
    await t.api.delete('/v1/models/blobs/aliases/pinned');
    expect((await t.api.post('/v1/models/blobs/predict', { inputs: [rows[0]], alias: 'pinned' }, wait)).body.error.code).toBe(
      'alias_missing',
    );
  });

  it('counts sync predictions in the tenant’s usage and in the metrics', async () => {
    const admin = new Api(server.url, adminKey());
    let daily: Array<{ metric: string; value: number }> = [];
    // The worker writes usage every 5 s; the requests of the tests above are there by then.
    for (let i = 0; i < 40; i++) {
      daily = (await admin.get(`/v1/admin/tenants/${t.id}/usage`)).body.daily;
      if (daily.some((d) => d.metric === 'sync_predictions' && d.value >= 2_000)) break;
      await sleep(250);
    }
    const count = daily.filter((d) => d.metric === 'sync_predictions').reduce((n, d) => n + d.value, 0);
    expect(count).toBeGreaterThanOrEqual(2_000);
    const metrics = (await new Api(server.url, adminKey()).get('/metrics')).text;
    expect(Number(/aiaas_sync_predictions_total\{outcome="succeeded"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2_000);
    expect(metrics).toMatch(/aiaas_sync_prediction_duration_seconds_count \d+/);
  });
});

describe('dynamic batching', () => {
  /** 64 clients at once, each asking for 1–3 rows of its own: predictions per request, as JSON text (bitwise). */
  const requests = Array.from({ length: 192 }, (_, i) => rows.slice(i % 140, (i % 140) + 1 + (i % 3)));
  const predictAll = () =>
    bounded(requests.length, 64, async (i) => {
      const r = await t.api.post('/v1/models/blobs/predict', { inputs: requests[i], version: 1 }, wait);
      expect(r.status).toBe(200);
      return JSON.stringify(r.body.predictions);
    });

  it('gives bitwise the same predictions with batching on and off', async () => {
    const before = await histogram('aiaas_sync_prediction_batch_requests', '1');
    const batched = await predictAll();
    const during = await histogram('aiaas_sync_prediction_batch_requests', '1');
    // Batching really happened: some requests shared a predict call.
    expect(during.count - before.count).toBe(requests.length);
    expect(during.count - during.atMost - (before.count - before.atMost)).toBeGreaterThan(0);

    await worker!.stop();
    worker = await startWorker(workerEnv({ PREDICT_BATCH_MAX_ROWS: '1' }));
    const alone = await predictAll();
    const after = await histogram('aiaas_sync_prediction_batch_requests', '1');
    // Batching off: every request was its own predict call.
    expect(after.count - during.count).toBe(requests.length);
    expect(after.atMost - during.atMost).toBe(requests.length);
    expect(alone).toEqual(batched);
  }, 120_000);
});

describe('when no worker answers in time', () => {
  it('answers 202 with a queued job that succeeds once a worker starts', async () => {
    await worker!.stop();
    worker = null;
    const r = await t.api.post('/v1/models/blobs/predict', { inputs: rows.slice(0, 4), version: 1 }, { headers: { Prefer: 'wait=1' } });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/jobs/${r.body.id}`);
    expect(r.body).toMatchObject({ type: 'inference', status: 'queued', version: 1, model_id: modelId });
    expect((await t.api.get(`/v1/jobs/${r.body.id}`)).body.status).toBe('queued');

    worker = await startWorker(workerEnv());
    let job = (await t.api.get(`/v1/jobs/${r.body.id}`)).body;
    for (let i = 0; i < 100 && job.status !== 'succeeded'; i++) {
      await sleep(100);
      job = (await t.api.get(`/v1/jobs/${r.body.id}`)).body;
    }
    expect(job).toMatchObject({ status: 'succeeded', version: 1, result: { version: 1, total: 4 } });
    expect(job.result.predictions).toHaveLength(4);
    const events = (await t.api.get(`/v1/jobs/${r.body.id}/events`)).body.data.map((e: { type: string }) => e.type);
    expect(events[0]).toBe('job.queued');
    expect(events[events.length - 1]).toBe('job.succeeded');
  }, 60_000);
});
