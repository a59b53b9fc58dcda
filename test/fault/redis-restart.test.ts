/**
 * Fault: Redis restarted, empty, while jobs are being submitted and run (docs/reliability.md).
 * The API commits every job to PostgreSQL before it answers and answers 503, never 500, for
 * whatever it cannot do without Redis; the workers and the API reconnect by themselves; the
 * reconciler puts back every accepted job that Redis forgot.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sleep } from '../support/factories.js';
import { count, explain, Fleet, report, seconds, trainingTenant, until } from '../support/fault.js';
import type { Api, Reply } from '../support/http.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { PrivateRedis } from '../support/redis-server.js';

const JOBS = count(60, 200);
const OUTAGE_MS = 3_000;
const TRAINING = { epochs: 2, seed: 1 };

let redis: PrivateRedis;
let api: RunningApi;
let db: pg.Pool;
let fleet: Fleet;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  api = await startApi({ REDIS_URL: redis.url });
  fleet = new Fleet({ REDIS_URL: redis.url, WORKER_CONCURRENCY: '2' });
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
  await api?.stop();
  await db?.end();
  await redis?.destroy();
});

/** Runs `fn` over `items`, `parallel` at a time. */
async function inParallel<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

describe('fault: Redis restarted during submissions', () => {
  it(`${JOBS} jobs submitted across a Redis restart: 202 or 503 (never 500), every accepted job finishes`, async () => {
    const t0 = Date.now();
    const t = await trainingTenant(api.url, 150);
    const workers = await Promise.all([fleet.start(), fleet.start()]);
    const pids = workers.map((w) => w.proc.pid);

    const accepted: Array<{ id: string; type: string; phase: string }> = [];
    const statuses: Record<string, Record<number, number>> = {};
    const unexpected: string[] = [];
    /** Every answer counts; a 5xx other than 503, or a 503 that is not in the error shape, is a finding. */
    const record = (phase: string, what: string, r: Reply) => {
      (statuses[phase] ??= {})[r.status] = (statuses[phase][r.status] ?? 0) + 1;
      if (r.status >= 500 && (r.status !== 503 || !r.body?.error?.code))
        unexpected.push(`${phase} ${what} → ${r.status} ${r.text.slice(0, 200)}`);
    };
    const submit = async (phase: string, client: Api) => {
      const r = await client.post('/v1/jobs', { type: 'training', model: 'm', dataset: t.dataset, hyperparameters: TRAINING });
      record(phase, 'POST /v1/jobs', r);
      if (r.status === 202) accepted.push({ id: r.body.id, type: 'training', phase });
      else if (r.status !== 503) unexpected.push(`${phase} POST /v1/jobs → ${r.status} ${r.text.slice(0, 200)}`);
    };
    const third = Math.floor(JOBS / 3);

    // Before: jobs flow; wait until some run and one has made a version (sync predictions need one).
    await inParallel(Array.from({ length: third }), 8, () => submit('before', t.api));
    await until('a version and a running job', async () => {
      const { rows } = await db.query<{ running: number; done: number }>(
        `SELECT count(*) FILTER (WHERE status = 'running')::int AS running, count(*) FILTER (WHERE status = 'succeeded')::int AS done FROM jobs WHERE tenant_id = $1`,
        [t.id],
      );
      return rows[0].running > 0 && rows[0].done > 0;
    });

    // During: Redis is gone. Submissions, sync predictions and reads go on.
    await redis.kill();
    const down = Date.now();
    await inParallel(Array.from({ length: third }), 8, () => submit('during', t.api));
    const predictions: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await t.api.post('/v1/models/m/predict', { inputs: [{ x1: 1, x2: 2, x3: 3, x4: 4 }] }, { headers: { prefer: 'wait=1' } });
      record('during', 'POST predict', r);
      if (r.status === 202 || r.status === 200) predictions.push(r.body.id);
      if (r.status === 202) accepted.push({ id: r.body.id, type: 'inference', phase: 'during' });
    }
    for (const path of [
      '/v1/me',
      '/v1/jobs?limit=5',
      `/v1/jobs/${accepted[0].id}`,
      `/v1/jobs/${accepted.at(-1)!.id}`,
      `/v1/jobs/${accepted.at(-1)!.id}/events`,
      '/v1/models/m',
      '/v1/datasets',
    ]) {
      record('during', `GET ${path}`, await t.api.get(path));
    }
    const ready = await t.api.get('/readyz');
    expect([ready.status, ready.body.checks?.redis]).toEqual([503, 'down']);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));

    // After: the same port, empty. The rest is submitted while everything reconnects.
    await redis.resume();
    const back = Date.now();
    await inParallel(Array.from({ length: JOBS - 2 * third }), 8, () => submit('after', t.api));
    await until('the API to be ready again', async () => (await t.api.get('/readyz')).status === 200, 30_000, 100);
    const readyAfterMs = Date.now() - back;

    expect(explain(unexpected, api.output)).toEqual([]);
    const ids = accepted.map((a) => a.id);
    await until(
      `all ${ids.length} accepted jobs to end`,
      async () => (await db.query(`SELECT 1 FROM jobs WHERE id = ANY($1) AND status IN ('queued', 'running')`, [ids])).rowCount === 0,
      180_000,
      250,
    );
    const rows = (
      await db.query<{ id: string; status: string; type: string; error: unknown }>(
        'SELECT id, status, type, error FROM jobs WHERE tenant_id = $1',
        [t.id],
      )
    ).rows;
    // Nothing accepted is lost, and nothing answered 503 was half-written: the rows are exactly the accepted jobs.
    expect(
      rows
        .filter((r) => r.type === 'training')
        .map((r) => r.id)
        .sort(),
    ).toEqual(
      accepted
        .filter((a) => a.type === 'training')
        .map((a) => a.id)
        .sort(),
    );
    const failed = rows.filter((r) => r.status !== 'succeeded');
    expect(failed).toEqual([]);
    const versions = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM model_versions WHERE model_id = $1', [t.model]);
    expect(versions.rows[0].n).toBe(accepted.filter((a) => a.type === 'training').length);
    // No restart: the same processes served before, during and after.
    expect(fleet.crashed()).toEqual([]);
    expect(fleet.live.map((w) => w.proc.pid).sort()).toEqual(pids.sort());
    expect(api.proc.exitCode).toBeNull();

    report('redis-restart', {
      submitted: JOBS,
      accepted: accepted.length,
      statuses,
      outage_ms: back - down,
      api_ready_after_ms: readyAfterMs,
      drained_after_restart_s: seconds(back),
      seconds: seconds(t0),
    });
  }, 300_000);
});
