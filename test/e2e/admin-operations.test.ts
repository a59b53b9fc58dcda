import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { Api } from '../support/http.js';
import { adminKey, createTenant, type TenantFixture, until as waitUntil } from '../support/factories.js';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, startApi, startWorker } from '../support/processes.js';

// The operator's routes (API.md "Admin routes"): the overview, every tenant's jobs, cancel and
// retry, usage by backend, and the cluster-wide figures on /metrics. Real API, worker, PostgreSQL,
// Redis and BullMQ; figures are checked against direct counts.
let server: RunningApi;
let admin: Api;
let db: pg.Pool;
let a: TenantFixture;
let b: TenantFixture;
const inputs = blobs.slice(0, 2).map(({ label: _l, ...x }) => x);

/** Waits of this file give up after 30 s unless told otherwise. */
const until = <T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000) => waitUntil(what, fn, timeoutMs);

async function tenantWithModel(): Promise<TenantFixture> {
  const t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  const m = await t.api.post('/v1/models', { name: 'm', task: 'classification' });
  await storeVersion(t.id, m.body.id, `job_fixture_${t.id}`);
  return t;
}

beforeAll(async () => {
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  server = await startApi();
  admin = new Api(server.url, adminKey());
  a = await tenantWithModel();
  b = await tenantWithModel();
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await db?.end();
});

describe('admin operations', () => {
  it("the overview's job counts equal a direct count and the sum of what each tenant sees", async () => {
    // With no worker running, jobs stay queued and nothing moves while we count.
    for (const t of [a, a, b]) expect((await t.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs })).status).toBe(202);
    const res = await admin.get('/v1/admin/overview');
    expect([res.status, res.status === 200 ? '' : res.text]).toEqual([200, '']);
    const overview = res.body;
    const { rows } = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM jobs GROUP BY status');
    for (const status of ['queued', 'running', 'succeeded', 'failed', 'canceled']) {
      expect([status, overview.jobs.by_status[status]]).toEqual([status, rows.find((r) => r.status === status)?.n ?? 0]);
    }
    // Per tenant: the overview's queued jobs are what each tenant's own API lists.
    for (const t of [a, b]) {
      const own = (await t.api.get('/v1/jobs?status=queued&limit=100')).body.data.length;
      expect(overview.tenants.find((x: { tenant_id: string }) => x.tenant_id === t.id)).toMatchObject({ queued: own, running: 0 });
    }
    const inference = overview.queues.find((q: { name: string }) => q.name === 'inference');
    const queuedInference = (
      await db.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'queued' AND type = 'inference' AND accelerator IS NULL`)
    ).rows[0].n;
    // Every queued inference job waits in the scheduler or in BullMQ (other test files' leftovers may sit in BullMQ as active).
    expect(inference.scheduled + inference.ready).toBeGreaterThanOrEqual(3);
    expect(inference.scheduled + inference.ready).toBeLessThanOrEqual(queuedInference);
    expect(overview).toMatchObject({
      object: 'overview',
      workers: { online: expect.any(Number) },
      webhooks: { pending: expect.any(Number), failing: expect.any(Number) },
    });
    expect(Object.keys(overview.recent)).toEqual(expect.arrayContaining(['last_5m', 'last_1h', 'throughput_per_minute', 'failure_rate']));
  });

  it("lists every tenant's jobs with filters, and shows any job with its events", async () => {
    const all = (await admin.get('/v1/admin/jobs?status=queued&limit=100')).body.data as Array<{
      tenant_id: string;
      id: string;
      status: string;
    }>;
    expect(all.some((j) => j.tenant_id === a.id) && all.some((j) => j.tenant_id === b.id)).toBe(true);
    const onlyB = (await admin.get(`/v1/admin/jobs?tenant=${b.id}&type=inference`)).body.data;
    expect(onlyB.length).toBeGreaterThan(0);
    expect(onlyB.every((j: { tenant_id: string; type: string }) => j.tenant_id === b.id && j.type === 'inference')).toBe(true);
    const one = await admin.get(`/v1/admin/jobs/${onlyB[0].id}`);
    expect(one.body).toMatchObject({ id: onlyB[0].id, tenant_id: b.id, status: 'queued' });
    expect((await admin.get(`/v1/admin/jobs/${onlyB[0].id}/events`)).body.data.map((e: { type: string }) => e.type)).toEqual([
      'job.queued',
    ]);
    expect((await admin.get('/v1/admin/jobs?status=exploded')).status).toBe(400);
    expect((await admin.get('/v1/admin/jobs/job_doesnotexist00000')).status).toBe(404);
  });

  it('cancels any tenant’s job, and says who did it in the audit log', async () => {
    const job = (await a.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs })).body;
    const canceled = await admin.post(`/v1/admin/jobs/${job.id}/cancel`, {});
    expect([canceled.status, canceled.body.status, canceled.body.tenant_id]).toEqual([200, 'canceled', a.id]);
    expect((await a.api.get(`/v1/jobs/${job.id}`)).body.status).toBe('canceled');
    expect((await admin.post(`/v1/admin/jobs/${job.id}/cancel`, {})).status).toBe(409);
    const audit = (await admin.get(`/v1/admin/audit-log?tenant=${a.id}&action=job.canceled_by_admin`)).body.data;
    expect(audit[0]).toMatchObject({ target_id: job.id, actor_type: 'admin', actor_key_id: expect.stringMatching(/^adk_/) });
  });

  it('retries a failed job as a new attempt, which a worker then runs to success', async () => {
    const job = (await b.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs })).body;
    // A job that failed for good (its attempts spent): the state an operator retries from.
    await db.query(
      `UPDATE jobs SET status = 'failed', attempts = max_attempts, error = '{"code":"worker_lost","message":"lost"}', finished_at = now() WHERE id = $1`,
      [job.id],
    );
    expect((await admin.post(`/v1/admin/jobs/${job.id}/retry`, {})).status).toBe(200);
    const retried = (await admin.get(`/v1/admin/jobs/${job.id}`)).body;
    expect(retried).toMatchObject({ status: 'queued', error: null, finished_at: null });
    expect((await admin.post(`/v1/admin/jobs/${job.id}/retry`, {})).status).toBe(409);
    const worker = await startWorker({ TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '2' });
    try {
      const done = await until(
        'the retried job to succeed',
        async () => {
          const j = (await b.api.get(`/v1/jobs/${job.id}`)).body;
          return j.status === 'succeeded' && j;
        },
        60_000,
      );
      expect(done.result.predictions).toHaveLength(inputs.length);
      const events = (await b.api.get(`/v1/jobs/${job.id}/events`)).body.data.map((e: { type: string }) => e.type);
      expect(events).toEqual(expect.arrayContaining(['job.queued', 'job.retrying', 'job.started', 'job.succeeded']));
      // The other queued jobs drain too; then the cluster figures show what the workers did.
      await until(
        "these tenants' queued jobs to drain",
        async () =>
          (await db.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'queued' AND tenant_id = ANY($1)`, [[a.id, b.id]])).rows[0]
            .n === 0,
        60_000,
      );
      const metrics = (await new Api(server.url, adminKey()).get('/metrics')).text;
      expect(metrics).toMatch(/^aiaas_jobs\{scope="cluster",status="succeeded"\} [1-9]/m);
      expect(metrics).toMatch(/^aiaas_job_run_seconds_count\{scope="cluster",type="inference"\} [1-9]/m);
      expect(metrics).toMatch(/^aiaas_job_wait_seconds_bucket\{scope="cluster",type="inference",le="\+Inf"\} [1-9]/m);
      expect(metrics).toMatch(/^aiaas_queue_depth\{scope="cluster",queue="training",stage="scheduled"\} \d+/m);
      expect(metrics).toMatch(/^aiaas_workers_online\{scope="cluster"\} [1-9]/m);
      expect(metrics).toMatch(/^aiaas_webhook_attempts_total\{scope="cluster",outcome="succeeded"\} \d+/m);
      // Usage: compute seconds by the backend that ran them.
      const usage = (await admin.get(`/v1/admin/tenants/${b.id}/usage`)).body;
      expect(usage.compute_seconds_by_backend.wasm).toBeGreaterThan(0);
      expect(usage.storage_bytes).toBeGreaterThan(0);
      const overview = (await admin.get('/v1/admin/overview')).body;
      expect(overview.recent.last_5m.succeeded).toBeGreaterThan(0);
      expect(overview.latency_seconds.run.p50).not.toBeNull();
    } finally {
      await worker.stop();
    }
  }, 120_000);

  it('refuses tenant keys on every admin route (403), and anonymous callers (401)', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/v1/admin/overview'],
      ['GET', '/v1/admin/workers'],
      ['GET', '/v1/admin/jobs'],
      ['GET', '/v1/admin/jobs/job_doesnotexist00000'],
      ['GET', '/v1/admin/jobs/job_doesnotexist00000/events'],
      ['POST', '/v1/admin/jobs/job_doesnotexist00000/cancel'],
      ['POST', '/v1/admin/jobs/job_doesnotexist00000/retry'],
      ['GET', '/v1/admin/audit-log'],
      ['GET', '/v1/admin/webhook-failures'],
      ['GET', '/v1/admin/tenants'],
      ['POST', '/v1/admin/tenants'],
      ['GET', `/v1/admin/tenants/${a.id}`],
      ['PATCH', `/v1/admin/tenants/${a.id}`],
      ['DELETE', `/v1/admin/tenants/${a.id}`],
      ['GET', `/v1/admin/tenants/${a.id}/usage`],
      ['GET', `/v1/admin/tenants/${a.id}/api-keys`],
      ['POST', `/v1/admin/tenants/${a.id}/api-keys`],
      ['DELETE', `/v1/admin/tenants/${a.id}/api-keys/key_doesnotexist0000`],
      ['GET', '/metrics'],
    ];
    for (const [method, path] of routes) {
      const asTenant = await a.api.call(method, path, method === 'GET' || method === 'DELETE' ? {} : { body: {} });
      expect([method, path, asTenant.status]).toEqual([method, path, 403]);
      const anonymous = await new Api(server.url).call(method, path);
      expect([method, path, anonymous.status]).toEqual([method, path, 401]);
    }
    // Still there: nothing a tenant key asked for happened.
    expect((await admin.get(`/v1/admin/tenants/${a.id}`)).status).toBe(200);
  });
});
