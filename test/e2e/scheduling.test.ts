import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { createTenant, type TenantFixture, until } from '../support/factories.js';
import { type RunningApi, startApi, startWorker } from '../support/processes.js';

// The fair scheduler end to end (docs/scheduling.md): real API, real worker processes, PostgreSQL,
// Redis and BullMQ. Tenants flood, race and lose workers; the figures the tests assert on are
// read from the job rows the service itself writes.
let server: RunningApi;
let db: pg.Pool;
type Worker = Awaited<ReturnType<typeof startWorker>>;
const workers: Worker[] = [];

/** Stalls are detected within seconds, so a killed worker's job moves on quickly. */
const FAST = {
  TF_BACKEND: 'wasm',
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  WORKER_HEARTBEAT_MS: '500',
  LOG_LEVEL: 'warn',
};
const inputs = blobs.slice(0, 5).map(({ label: _l, ...x }) => x);

async function worker(env: Record<string, string> = {}): Promise<Worker> {
  const w = await startWorker({ ...FAST, ...env });
  workers.push(w);
  return w;
}

async function stopWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
}

/** A tenant with a trained model `m` (stored directly) and a small dataset. */
async function tenant(quotas: Record<string, number>): Promise<TenantFixture & { dataset: string }> {
  const t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000, max_queued_jobs: 10_000, ...quotas } });
  const m = await t.api.post('/v1/models', { name: 'm', task: 'classification' });
  await storeVersion(t.id, m.body.id, `job_fixture_${t.id}`);
  const ds = await t.api.post('/v1/datasets', { name: 'd', task: 'classification', records: blobs });
  return { ...t, dataset: ds.body.id };
}

interface Row {
  id: string;
  status: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  worker_id: string | null;
}

async function rows(tenantId: string): Promise<Row[]> {
  return (
    await db.query<Row>(
      'SELECT id, status, created_at, started_at, finished_at, worker_id FROM jobs WHERE tenant_id = $1 ORDER BY created_at, id',
      [tenantId],
    )
  ).rows;
}

/** Submits `n` jobs, `parallel` at a time; returns their ids in submission order. */
async function flood(t: TenantFixture, n: number, body: Record<string, unknown>, parallel = 16): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += parallel) {
    const replies = await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, () => t.api.post('/v1/jobs', body)));
    for (const r of replies) {
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
  }
  return ids;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

beforeAll(async () => {
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  server = await startApi();
}, 60_000);
afterAll(async () => {
  await stopWorkers();
  await server?.stop();
  await db?.end();
});

describe('fair scheduling', () => {
  it('a tenant behind a flood of 200 jobs starts within about one job-length per slot', async () => {
    const a = await tenant({ max_concurrent_jobs: 2 });
    const b = await tenant({ max_concurrent_jobs: 2 });
    const job = { type: 'inference', model: 'm', inputs };
    // The flood is queued before any worker runs: what is left of it when B arrives does not
    // depend on how fast submissions go beside the jobs.
    await flood(a, 200, job);
    await worker({ WORKER_CONCURRENCY: '2' });
    // Let the flood run for a while, so that B arrives with the queue full of A's work.
    await until('A to have finished 10 jobs', async () => (await rows(a.id)).filter((r) => r.status === 'succeeded').length >= 10);

    const submitted = await b.api.post('/v1/jobs', job);
    expect(submitted.status).toBe(202);
    const place = await b.api.get(`/v1/jobs/${submitted.body.id}`);
    const aQueued = (await rows(a.id)).filter((r) => r.status === 'queued').length;
    expect(aQueued).toBeGreaterThan(100);
    if (place.body.status === 'queued') expect(place.body.queue_position).toBeLessThanOrEqual(3);

    const bRow = await until('B to finish', async () => (await rows(b.id)).find((r) => r.status === 'succeeded'));
    const waitMs = bRow.started_at!.getTime() - bRow.created_at.getTime();
    const aRows = await rows(a.id);
    const lengths = aRows.filter((r) => r.finished_at && r.started_at).map((r) => r.finished_at!.getTime() - r.started_at!.getTime());
    const jobLength = median(lengths);
    const startedAfterB = aRows.filter((r) => r.status === 'queued' || (r.started_at && r.started_at > bRow.started_at!)).length;
    process.stdout.write(
      `fairness: B waited ${waitMs} ms; A's median job ${jobLength} ms; ${startedAfterB} of A's jobs started after B (FIFO would have made B wait for ${aQueued})\n`,
    );
    // Two slots: B waits for one of them to free (at most one job-length), plus the dispatch itself.
    expect(waitMs).toBeLessThanOrEqual(2 * jobLength + 750);
    expect(startedAfterB).toBeGreaterThan(50);

    // A's flood drains in its own order, every job once.
    await until('A to drain', async () => (await rows(a.id)).every((r) => r.status === 'succeeded'), 120_000);
    const order = (await rows(a.id)).map((r) => r.started_at!.getTime());
    expect(order.filter((t, i) => i > 0 && t < order[i - 1] - 1_000)).toEqual([]);
    await stopWorkers();
  }, 180_000);

  it('max_concurrent_jobs holds exactly while 50 jobs race across two worker processes', async () => {
    const c = await tenant({ max_concurrent_jobs: 2 });
    const racing = await Promise.all([worker({ WORKER_CONCURRENCY: '3' }), worker({ WORKER_CONCURRENCY: '3' })]);
    const body = { type: 'training', model: 'm', dataset: c.dataset, hyperparameters: { epochs: 2, seed: 1 } };
    const ids = await Promise.all(Array.from({ length: 50 }, () => c.api.post('/v1/jobs', body).then((r) => r.body.id as string)));
    expect(new Set(ids).size).toBe(50);

    let max = 0;
    const samples: number[] = [];
    await until(
      'all 50 to finish',
      async () => {
        const { rows: r } = await db.query<{ running: number; done: number }>(
          `SELECT count(*) FILTER (WHERE status = 'running')::int AS running, count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'canceled'))::int AS done FROM jobs WHERE tenant_id = $1`,
          [c.id],
        );
        samples.push(r[0].running);
        max = Math.max(max, r[0].running);
        return r[0].done === 50;
      },
      180_000,
    );
    const all = await rows(c.id);
    process.stdout.write(
      `concurrency: ${samples.length} samples, max running ${max}, workers used ${new Set(all.map((r) => r.worker_id)).size}\n`,
    );
    expect(max).toBeLessThanOrEqual(2);
    expect(max).toBe(2);
    expect(all.every((r) => r.status === 'succeeded')).toBe(true);
    expect(new Set(all.map((r) => r.worker_id))).toEqual(new Set(racing.map((w) => w.ready.id)));
    // And from the rows' own timestamps: at no instant did more than two runs overlap.
    const edges = all.flatMap((r) => [
      { at: r.started_at!.getTime(), d: 1 },
      { at: r.finished_at!.getTime(), d: -1 },
    ]);
    edges.sort((x, y) => x.at - y.at || x.d - y.d);
    let now = 0;
    let peak = 0;
    for (const e of edges) peak = Math.max(peak, (now += e.d));
    expect(peak).toBeLessThanOrEqual(2);
    await stopWorkers();
  }, 240_000);

  it("a killed worker's slot comes back: its job finishes elsewhere, then the tenant's next job runs", async () => {
    const d = await tenant({ max_concurrent_jobs: 1 });
    const first = await worker({ WORKER_CONCURRENCY: '1' });
    const long = await d.api.post('/v1/jobs', {
      type: 'training',
      model: 'm',
      dataset: d.dataset,
      hyperparameters: { epochs: 400, batch_size: 8, seed: 1 },
    });
    await until('the long job to run', async () => (await rows(d.id)).find((r) => r.id === long.body.id && r.status === 'running'));
    const next = await d.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs });
    const waiting = await d.api.get(`/v1/jobs/${next.body.id}`);
    expect(waiting.body).toMatchObject({ status: 'queued', waiting_for: 'tenant_concurrency_limit' });

    await worker({ WORKER_CONCURRENCY: '2' });
    await first.stop('SIGKILL');
    const done = await until(
      'both jobs to finish',
      async () => {
        const r = await rows(d.id);
        return r.every((x) => x.status === 'succeeded') && r;
      },
      120_000,
    );
    const [l, n] = [done.find((r) => r.id === long.body.id)!, done.find((r) => r.id === next.body.id)!];
    // The cap held throughout: the next job started only once the long one (finished by the other worker) ended.
    expect(n.started_at!.getTime()).toBeGreaterThanOrEqual(l.finished_at!.getTime() - 50);
    expect(l.worker_id).not.toBe(first.ready.id);
    const versions = await db.query('SELECT count(*)::int AS n FROM model_versions WHERE training_job_id = $1', [l.id]);
    expect(versions.rows[0].n).toBe(1);
  }, 180_000);
});
