/**
 * Fault: 50 jobs submitted at once against max_concurrent_jobs = 2, on workers with six slots
 * between them, while a worker is killed and Redis (which holds the scheduler's slot leases) is
 * restarted empty (docs/reliability.md). The running count is sampled from PostgreSQL every 50 ms
 * for the whole run: the leases hold the line while Redis lives, and `JobRepository.start`'s count
 * under the tenant's lock holds it when Redis has forgotten them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sleep } from '../support/factories.js';
import { Fleet, report, seconds, trainingTenant, until } from '../support/fault.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { PrivateRedis } from '../support/redis-server.js';

const JOBS = 50;
const CAP = 2;

let redis: PrivateRedis;
let api: RunningApi;
let db: pg.Pool;
let fleet: Fleet;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 3 });
  api = await startApi({ REDIS_URL: redis.url });
  fleet = new Fleet({ REDIS_URL: redis.url, WORKER_CONCURRENCY: '3' });
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
  await api?.stop();
  await db?.end();
  await redis?.destroy();
});

describe('fault: max_concurrent_jobs under concurrent submissions, a dead worker and a Redis restart', () => {
  it(`${JOBS} concurrent submissions against max_concurrent_jobs = ${CAP}: never more than ${CAP} running (sampled every 50 ms)`, async () => {
    const t0 = Date.now();
    const t = await trainingTenant(api.url, 150, { max_concurrent_jobs: CAP });
    await Promise.all([fleet.start(), fleet.start()]);

    const samples: Array<{ at: number; running: number; done: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await db.query<{ running: number; done: number }>(
          `SELECT count(*) FILTER (WHERE status = 'running')::int AS running, count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'canceled'))::int AS done FROM jobs WHERE tenant_id = $1`,
          [t.id],
        );
        samples.push({ at: Date.now(), ...rows[0] });
        await sleep(50);
      }
    })();
    const done = () => samples.at(-1)?.done ?? 0;

    const body = { type: 'training', model: 'm', dataset: t.dataset, hyperparameters: { epochs: 3, seed: 1 } };
    const replies = await Promise.all(Array.from({ length: JOBS }, () => t.api.post('/v1/jobs', body)));
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 202));
    const ids = replies.map((r) => r.body.id as string);
    expect(new Set(ids).size).toBe(JOBS);

    // A third of the way: kill -9 a worker that is running one of the tenant's jobs.
    await until('a third of the jobs to finish', () => done() >= JOBS / 3, 120_000);
    const victim = await until('a running job on a live worker', async () => {
      const { rows } = await db.query<{ worker_id: string }>(`SELECT worker_id FROM jobs WHERE tenant_id = $1 AND status = 'running'`, [
        t.id,
      ]);
      const live = fleet.ids();
      return rows.find((r) => live.has(r.worker_id));
    });
    await fleet.kill(victim.worker_id);
    await fleet.start();

    // Two thirds: Redis restarts empty; the slot leases are gone with it.
    await until('two thirds of the jobs to finish', () => done() >= (2 * JOBS) / 3, 120_000);
    await redis.kill();
    await sleep(1_500);
    await redis.resume();

    await until('all jobs to finish', () => done() === JOBS, 180_000);
    sampling = false;
    await sampler;

    const max = Math.max(...samples.map((s) => s.running));
    const over = samples.filter((s) => s.running > CAP);
    expect(over).toEqual([]);
    expect(max).toBe(CAP);
    const rows = (await db.query<{ status: string }>('SELECT status FROM jobs WHERE tenant_id = $1', [t.id])).rows;
    expect(rows.filter((r) => r.status !== 'succeeded')).toEqual([]);
    const versions = await db.query<{ n: number }>(
      'SELECT count(DISTINCT training_job_id)::int AS n, count(*)::int AS total FROM model_versions WHERE model_id = $1',
      [t.model],
    );
    expect(versions.rows[0]).toEqual({ n: JOBS, total: JOBS });
    expect(fleet.crashed()).toEqual([]);

    const gaps = samples.slice(1).map((s, i) => s.at - samples[i].at);
    report('concurrency-cap', {
      jobs: JOBS,
      cap: CAP,
      samples: samples.length,
      max_running: max,
      time_at_cap_pct: Math.round((100 * samples.filter((s) => s.running === CAP).length) / samples.length),
      longest_sample_gap_ms: Math.max(...gaps),
      seconds: seconds(t0),
    });
  }, 300_000);
});
