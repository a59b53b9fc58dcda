/**
 * Fault: workers killed with SIGKILL in the middle of training, again and again (docs/reliability.md).
 * A batch of training jobs runs on two workers; each time one of them is mid-epoch it is killed
 * and a fresh one started. BullMQ's stall check hands the job to a live worker, which starts it
 * again (running → running); the registry makes one version per training job whatever happens.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { count, Fleet, report, seconds, trainingTenant, until } from '../support/fault.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { PrivateRedis } from '../support/redis-server.js';

const JOBS = count(10, 30);
const KILLS = count(3, 10);
/** About two seconds of wasm training per job: long enough to be caught mid-epoch. */
const HYPERPARAMETERS = { epochs: 12, batch_size: 32, seed: 1 };

let redis: PrivateRedis;
let api: RunningApi;
let db: pg.Pool;
let fleet: Fleet;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  api = await startApi({ REDIS_URL: redis.url });
  fleet = new Fleet({ REDIS_URL: redis.url, WORKER_CONCURRENCY: '1' });
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
  await api?.stop();
  await db?.end();
  await redis?.destroy();
});

interface Running {
  id: string;
  worker_id: string;
  epoch: number;
  epochs: number;
}

describe('fault: worker killed mid-training', () => {
  it(`${KILLS} SIGKILLs across ${JOBS} training jobs: every job succeeds exactly once, one version each`, async () => {
    const t0 = Date.now();
    const t = await trainingTenant(api.url, 1_000);
    await Promise.all([fleet.start(), fleet.start()]);
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const r = await t.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: t.dataset, hyperparameters: HYPERPARAMETERS });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }

    const kills: Array<{ job: string; worker: string; epoch: number }> = [];
    // Replacements start in the background: the next kill may come before one is ready.
    const replacements: Array<Promise<unknown>> = [];
    for (let k = 0; k < KILLS; k++) {
      // A job mid-training on a worker that is still alive, at an epoch that moves from kill to kill
      // (1, 4, 7, 1…, never the last); a job not killed before, since three stalls of one job spend its
      // attempts (docs/jobs.md).
      const from = 1 + ((3 * k) % 9);
      const victim = await until(
        `a job mid-training on a live worker (kill ${k + 1} of ${KILLS})`,
        async () => {
          const { rows } = await db.query<Running>(
            `SELECT id, worker_id, (progress->>'epoch')::int AS epoch, (progress->>'epochs')::int AS epochs
               FROM jobs WHERE tenant_id = $1 AND status = 'running' AND (progress->>'epoch')::int BETWEEN $2 AND (progress->>'epochs')::int - 2`,
            [t.id, from],
          );
          const live = fleet.ids();
          return rows.find((r) => live.has(r.worker_id) && !kills.some((k) => k.job === r.id));
        },
        60_000,
        20,
      );
      await fleet.kill(victim.worker_id);
      kills.push({ job: victim.id, worker: victim.worker_id, epoch: victim.epoch });
      replacements.push(fleet.start());
    }
    await Promise.all(replacements);

    await until(
      'every job to end',
      async () => (await db.query(`SELECT 1 FROM jobs WHERE tenant_id = $1 AND status IN ('queued', 'running')`, [t.id])).rowCount === 0,
      120_000,
      200,
    );

    const jobs = (
      await db.query<{ id: string; status: string; attempts: number; version: number | null }>(
        'SELECT id, status, attempts, version FROM jobs WHERE tenant_id = $1',
        [t.id],
      )
    ).rows;
    expect(jobs.map((j) => j.status)).toEqual(ids.map(() => 'succeeded'));
    const events = (
      await db.query<{ job_id: string; type: string; data: { worker_id?: string } }>(
        'SELECT job_id, type, data FROM job_events WHERE job_id = ANY($1) ORDER BY seq',
        [ids],
      )
    ).rows;
    for (const id of ids) {
      // Exactly once: one terminal event, and it is job.succeeded.
      const terminal = events.filter((e) => e.job_id === id && ['job.succeeded', 'job.failed', 'job.canceled'].includes(e.type));
      expect([id, terminal.map((e) => e.type)]).toEqual([id, ['job.succeeded']]);
    }
    // Every killed attempt was started again elsewhere.
    for (const kill of kills) {
      const started = events.filter((e) => e.job_id === kill.job && e.type === 'job.started').map((e) => e.data.worker_id);
      expect(started).toContain(kill.worker);
      expect(started.at(-1)).not.toBe(kill.worker);
    }
    // One version per job: numbered 1..N, each naming its own training job.
    const versions = (
      await db.query<{ number: number; training_job_id: string }>(
        'SELECT number, training_job_id FROM model_versions WHERE model_id = $1 ORDER BY number',
        [t.model],
      )
    ).rows;
    expect(versions.map((v) => v.number)).toEqual(ids.map((_, i) => i + 1));
    expect(new Set(versions.map((v) => v.training_job_id))).toEqual(new Set(ids));
    expect(new Set(jobs.map((j) => j.version)).size).toBe(JOBS);
    expect(fleet.crashed()).toEqual([]);
    expect(api.proc.exitCode).toBeNull();

    report('worker-kill', {
      jobs: JOBS,
      kills: KILLS,
      killed_at_epochs: kills.map((k) => k.epoch).join(','),
      restarted_jobs: jobs.filter((j) => j.attempts > 1).length,
      max_attempts: Math.max(...jobs.map((j) => j.attempts)),
      seconds: seconds(t0),
    });
  }, 300_000);
});
