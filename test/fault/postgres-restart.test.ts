/**
 * Fault: PostgreSQL goes away while jobs run, and one worker dies meanwhile (docs/reliability.md).
 * The test runs its own PostgreSQL (initdb in a temporary directory, the repo's migrations) and its
 * own Redis, and points its own API and workers at them. While the server is down the compute goes
 * on, the API answers 503 and the workers' writes fail; when it returns, the results are written
 * (BullMQ's retries), and a job left `running` by the dead worker, or by retries spent during the
 * outage, is taken back by the reconciler.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTenant, sleep } from '../support/factories.js';
import { count, explain, FULL, Fleet, report, seconds, until } from '../support/fault.js';
import type { Reply } from '../support/http.js';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { PrivatePostgres } from '../support/postgres-server.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { PrivateRedis } from '../support/redis-server.js';

const JOBS = count(6, 12);
/** One crash-like restart under `npm test`; the full run adds a clean one before it. */
const RESTARTS: Array<'fast' | 'immediate'> = FULL ? ['fast', 'immediate'] : ['immediate'];
const OUTAGE_MS = 4_000;
/** About three seconds of wasm training per job. */
const TRAINING = { epochs: 16, batch_size: 32, seed: 2 };

let postgres: PrivatePostgres;
let redis: PrivateRedis;
let api: RunningApi;
let db: pg.Pool;
let fleet: Fleet;

beforeAll(async () => {
  [postgres, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
  const env = { DATABASE_URL: postgres.url(), REDIS_URL: redis.url, REDIS_PREFIX: `fault-pg-${randomBytes(3).toString('hex')}` };
  db = new pg.Pool({ connectionString: postgres.url(), max: 2 });
  // The test's own reads fail during the outage like everyone's; an idle client's error must not crash Jest.
  db.on('error', () => undefined);
  api = await startApi(env);
  fleet = new Fleet({ ...env, WORKER_CONCURRENCY: '1' });
}, 120_000);

afterAll(async () => {
  await fleet?.stopAll();
  await api?.stop();
  await db?.end();
  await Promise.all([postgres?.destroy(), redis?.destroy()]);
});

interface Row {
  id: string;
  status: string;
  worker_id: string | null;
  attempts: number;
  epoch: number | null;
  started_at: Date | null;
  finished_at: Date | null;
}

const rowsOf = async (tenantId: string) =>
  (
    await db.query<Row>(
      `SELECT id, status, worker_id, attempts, (progress->>'epoch')::int AS epoch, started_at, finished_at FROM jobs WHERE tenant_id = $1 ORDER BY created_at, id`,
      [tenantId],
    )
  ).rows;

describe('fault: PostgreSQL restarted while jobs run', () => {
  it(`${JOBS} trainings across ${RESTARTS.length} PostgreSQL restart(s) and a dead worker: every result is written, nothing stays running`, async () => {
    const t0 = Date.now();
    const t = await createTenant(api.url, { quotas: { requests_per_minute: 100_000, max_concurrent_jobs: 8 } });
    const ds = await t.api.post('/v1/datasets', { name: 'pg', task: 'classification', records: blobRows(1_000, { seed: 4 }) });
    const model = await t.api.post('/v1/models', { name: 'm', task: 'classification' });
    expect([ds.status, model.status]).toEqual([201, 201]);
    await Promise.all([fleet.start(), fleet.start()]);
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const r = await t.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: ds.body.id, hyperparameters: TRAINING });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }

    const outages: Array<{ mode: string; down: number; up: number; running: string[]; killed?: { worker: string; job: string } }> = [];
    const answers: Record<number, number> = {};
    const unexpected: string[] = [];
    const record = (what: string, r: Reply) => {
      answers[r.status] = (answers[r.status] ?? 0) + 1;
      if (r.status !== 503 || !r.body?.error?.code) unexpected.push(`${what} → ${r.status} ${r.text.slice(0, 200)}`);
    };
    for (const [i, mode] of RESTARTS.entries()) {
      // Both workers mid-training (the first restart also kills one of them while the server is down).
      const running = await until(
        `two jobs mid-training before restart ${i + 1}`,
        async () => {
          const live = fleet.ids();
          const r = (await rowsOf(t.id)).filter(
            (j) => j.status === 'running' && j.epoch !== null && j.epoch >= 1 && live.has(j.worker_id!),
          );
          return r.length >= 2 && r;
        },
        60_000,
      );
      await postgres.stop(mode);
      const down = Date.now();
      const outage: (typeof outages)[number] = { mode, down, up: 0, running: running.map((j) => j.id) };
      // The API is up but cannot read or commit: 503 (retry later), never 500.
      record(
        'POST /v1/jobs',
        await t.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: ds.body.id, hyperparameters: TRAINING }),
      );
      record(`GET /v1/jobs/${ids[0]}`, await t.api.get(`/v1/jobs/${ids[0]}`));
      record('GET /v1/jobs', await t.api.get('/v1/jobs'));
      record('GET /v1/models', await t.api.get('/v1/models'));
      if (i === 0) {
        const victim = running[0];
        await fleet.kill(victim.worker_id!);
        outage.killed = { worker: victim.worker_id!, job: victim.id };
      }
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));
      await postgres.resume();
      outage.up = Date.now();
      outages.push(outage);
      // A worker cannot start without its database; the replacement comes once it is back.
      if (i === 0) await fleet.start();
    }
    expect(explain(unexpected, api.output)).toEqual([]);
    await until('the API to be ready again', async () => (await t.api.get('/readyz')).status === 200, 30_000, 100);

    await until(
      'every job to end',
      async () => (await rowsOf(t.id)).every((j) => j.status !== 'queued' && j.status !== 'running'),
      180_000,
      250,
    );
    const rows = await rowsOf(t.id);
    // Only the jobs accepted before (the 503s wrote nothing), all succeeded.
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(rows.filter((r) => r.status !== 'succeeded')).toEqual([]);
    const versions = (
      await db.query<{ training_job_id: string }>('SELECT training_job_id FROM model_versions WHERE model_id = $1', [model.body.id])
    ).rows;
    expect(versions.map((v) => v.training_job_id).sort()).toEqual([...ids].sort());
    // The jobs that were running when the server went down were written after it came back.
    for (const o of outages) {
      for (const id of o.running.filter((id) => id !== o.killed?.job)) {
        const r = rows.find((x) => x.id === id)!;
        expect(r.finished_at!.getTime()).toBeGreaterThanOrEqual(o.up - 1_000);
      }
    }
    // The dead worker's job was started again by a live one.
    const killed = outages[0].killed!;
    const started = (
      await db.query<{ worker_id: string }>(
        `SELECT data->>'worker_id' AS worker_id FROM job_events WHERE job_id = $1 AND type = 'job.started' ORDER BY seq`,
        [killed.job],
      )
    ).rows.map((e) => e.worker_id);
    expect(started[0]).toBe(killed.worker);
    expect(started.at(-1)).not.toBe(killed.worker);
    const retried = (
      await db.query<{ job_id: string; code: string }>(
        `SELECT job_id, data->'error'->>'code' AS code FROM job_events WHERE job_id = ANY($1) AND type = 'job.retrying'`,
        [ids],
      )
    ).rows;
    expect(fleet.crashed()).toEqual([]);
    expect(api.proc.exitCode).toBeNull();

    report('postgres-restart', {
      jobs: JOBS,
      restarts: RESTARTS.join(','),
      outage_ms: outages.map((o) => o.up - o.down).join(','),
      answers_during_outage: answers,
      retrying_events: retried.map((r) => r.code).join(',') || 'none',
      max_attempts: Math.max(...rows.map((r) => r.attempts)),
      done_after_last_restart_s: seconds(outages.at(-1)!.up),
      seconds: seconds(t0),
    });
  }, 300_000);
});
