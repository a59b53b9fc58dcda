import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { adminKey, createTenant, type TenantFixture, until } from '../support/factories.js';
import { Api } from '../support/http.js';
import { blobs } from '../support/ml-fixtures.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// Batched admission over HTTP (issue 16): racing submissions are admitted in batches, and
// max_queued_jobs reads the tenant's row of tenant_job_counts, which triggers on `jobs` keep equal
// to count(*) whatever changes a status: admission, cancellation, a worker starting and finishing
// jobs, deletion.
let server: RunningApi;
let worker: RunningProcess | undefined;
let db: pg.Client;

beforeAll(async () => {
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  server = await startApi();
});
afterAll(async () => {
  await worker?.stop();
  await server?.stop();
  await db?.end();
});

/** A tenant with a dataset and a model to train, and the body of a small training job. */
async function tenantWithModel(quotas: Record<string, number>): Promise<{ t: TenantFixture; body: Record<string, unknown> }> {
  const t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000, ...quotas } });
  const ds = await t.api.post('/v1/datasets', { name: 'blobs', task: 'classification', records: blobs });
  expect(ds.status).toBe(201);
  expect((await t.api.post('/v1/models', { name: 'm', task: 'classification' })).status).toBe(201);
  return { t, body: { type: 'training', model: 'm', dataset: ds.body.id, hyperparameters: { epochs: 1, seed: 1 } } };
}

/** The counter and the count it stands for, read in one statement (one snapshot): they must agree at every moment. */
async function counts(tenantId: string) {
  const { rows } = await db.query<{ queued: number | null; running: number | null; queued_rows: number; running_rows: number }>(
    `SELECT c.queued, c.running,
            (SELECT count(*)::int FROM jobs WHERE tenant_id = $1 AND status = 'queued') AS queued_rows,
            (SELECT count(*)::int FROM jobs WHERE tenant_id = $1 AND status = 'running') AS running_rows
       FROM (SELECT 1) one LEFT JOIN tenant_job_counts c ON c.tenant_id = $1`,
    [tenantId],
  );
  return rows[0];
}

async function expectExact(tenantId: string, queued: number, running = 0) {
  expect(await counts(tenantId)).toEqual({ queued, running, queued_rows: queued, running_rows: running });
}

describe('batched admission', () => {
  let a: Awaited<ReturnType<typeof tenantWithModel>>;
  let b: Awaited<ReturnType<typeof tenantWithModel>>;

  beforeAll(async () => {
    a = await tenantWithModel({ max_queued_jobs: 10 });
    b = await tenantWithModel({ max_queued_jobs: 1_000 });
  });

  it('admits exactly max_queued_jobs of 50 racing submissions from one tenant, others 429; another tenant queues beside it', async () => {
    // Another tenant's queued jobs never count against this one: b has 30 queued before the race, and races beside it.
    const before = await Promise.all(Array.from({ length: 30 }, () => b.t.api.post('/v1/jobs', b.body)));
    expect(before.map((r) => r.status)).toEqual(Array(30).fill(202));
    // 50 of a's, with one of b's after every fifth.
    const sent = Array.from({ length: 50 }, (_, i) => [
      { tenant: 'a', reply: a.t.api.post('/v1/jobs', a.body) },
      ...(i % 5 === 0 ? [{ tenant: 'b', reply: b.t.api.post('/v1/jobs', b.body) }] : []),
    ]).flat();
    const replies = await Promise.all(sent.map(async (s) => ({ tenant: s.tenant, r: await s.reply })));
    const ofA = replies.filter((x) => x.tenant === 'a').map((x) => x.r);
    const ofB = replies.filter((x) => x.tenant === 'b').map((x) => x.r);
    const statuses = (rs: typeof ofA) => rs.map((r) => r.status).sort();
    expect(ofA).toHaveLength(50);
    expect(statuses(ofA)).toEqual([...Array(10).fill(202), ...Array(40).fill(429)]);
    expect(statuses(ofB)).toEqual(Array(10).fill(202));
    for (const r of ofA.filter((x) => x.status === 429)) {
      expect(r.body.error).toEqual({
        type: 'quota_exceeded_error',
        code: 'max_queued_jobs',
        message: 'The tenant has 10 queued jobs, its max_queued_jobs; retry when some have started',
      });
      expect(r.headers.get('retry-after')).toBe('10');
    }
    // The accepted ones are committed (readable at once) and the tenant's own.
    const accepted = ofA.filter((r) => r.status === 202).map((r) => r.body.id as string);
    const listed = (await a.t.api.get('/v1/jobs?limit=100')).body.data.map((j: { id: string }) => j.id);
    expect([...listed].sort()).toEqual([...accepted].sort());
    await expectExact(a.t.id, 10);
    await expectExact(b.t.id, 40);
  });

  it('keeps the counter exact when queued jobs are canceled, and admits again up to the limit', async () => {
    const queued = (await a.t.api.get('/v1/jobs?status=queued&limit=100')).body.data as Array<{ id: string }>;
    expect(queued).toHaveLength(10);
    const canceled = await Promise.all(queued.slice(0, 4).map((j) => a.t.api.post(`/v1/jobs/${j.id}/cancel`)));
    expect(canceled.map((r) => [r.status, r.body.status])).toEqual(Array(4).fill([200, 'canceled']));
    await expectExact(a.t.id, 6);
    // A second cancel changes nothing.
    expect((await a.t.api.post(`/v1/jobs/${queued[0].id}/cancel`)).status).toBe(409);
    await expectExact(a.t.id, 6);
    const again = await Promise.all(Array.from({ length: 8 }, () => a.t.api.post('/v1/jobs', a.body)));
    expect(again.map((r) => r.status).sort()).toEqual([...Array(4).fill(202), ...Array(4).fill(429)]);
    await expectExact(a.t.id, 10);
  });

  it('keeps the counter exact whatever statement changes jobs (direct SQL updates and deletes)', async () => {
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM jobs WHERE tenant_id = $1 AND status = 'queued' ORDER BY id LIMIT 3`, [
      b.t.id,
    ]);
    await db.query(`UPDATE jobs SET status = 'running' WHERE id = $1`, [rows[0].id]);
    await expectExact(b.t.id, 39, 1);
    // Several changes of one row in one transaction: counted at commit, once each.
    await db.query('BEGIN');
    await db.query(`UPDATE jobs SET status = 'running' WHERE id = $1`, [rows[1].id]);
    await db.query(`UPDATE jobs SET status = 'failed' WHERE id = $1`, [rows[1].id]);
    await db.query(`UPDATE jobs SET progress = '{"percent": 1}' WHERE tenant_id = $1`, [b.t.id]);
    await db.query('COMMIT');
    await expectExact(b.t.id, 38, 1);
    await db.query('DELETE FROM jobs WHERE id = ANY($1)', [[rows[0].id, rows[2].id]]);
    await expectExact(b.t.id, 37, 0);
  });

  it('forgets the counter with the tenant: deleting a tenant with queued jobs, while it submits, answers no 500', async () => {
    const admin = new Api(server.url, adminKey());
    const submitting = Promise.all(Array.from({ length: 20 }, () => b.t.api.post('/v1/jobs', b.body)));
    const deleted = await admin.call('DELETE', `/v1/admin/tenants/${b.t.id}`);
    expect(deleted.status).toBe(200);
    for (const r of await submitting) expect([202, 401, 404]).toContain(r.status);
    expect(await counts(b.t.id)).toEqual({ queued: null, running: null, queued_rows: 0, running_rows: 0 });
    expect((await admin.call('DELETE', `/v1/admin/tenants/${a.t.id}`)).status).toBe(200);
    expect((await counts(a.t.id)).queued).toBeNull();
  });

  it('keeps the counter exact while a worker starts and finishes the jobs (sampled in one snapshot with count(*))', async () => {
    worker = await startWorker({ TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '2' });
    const c = await tenantWithModel({ max_queued_jobs: 100, max_concurrent_jobs: 2 });
    const submitted = await Promise.all(Array.from({ length: 8 }, () => c.t.api.post('/v1/jobs', c.body)));
    expect(submitted.map((r) => r.status)).toEqual(Array(8).fill(202));
    const samples: Array<Awaited<ReturnType<typeof counts>>> = [];
    await until(
      'the 8 jobs to finish',
      async () => {
        const s = await counts(c.t.id);
        samples.push(s);
        return s.queued_rows === 0 && s.running_rows === 0;
      },
      120_000,
      20,
    );
    for (const s of samples) expect([s.queued, s.running]).toEqual([s.queued_rows, s.running_rows]);
    // The samples saw jobs running, not only the end.
    expect(samples.some((s) => (s.running ?? 0) > 0)).toBe(true);
    const jobs = (await c.t.api.get('/v1/jobs?limit=100')).body.data as Array<{ status: string }>;
    expect(jobs.map((j) => j.status)).toEqual(Array(8).fill('succeeded'));
    await expectExact(c.t.id, 0, 0);
  });
});
