import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AdmissionRepository, Database, dropDatabase, encodeAdmission, ensureDatabase, migrate, type NewJob } from '@app/db';
import { cpSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

// aiaas_admit_jobs and tenant_job_counts on a database of their own (migration 20261208000000_admission_batches).
const MIGRATION = '20261208000000_admission_batches';
const all = join(process.cwd(), 'prisma/migrations');
const url = new URL(process.env.DATABASE_URL!);
url.pathname = `${url.pathname}_admission`;
let db: pg.Client;

beforeAll(async () => {
  await dropDatabase(url.toString());
  await ensureDatabase(url.toString());
  db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await dropDatabase(url.toString());
});

const counted = async () =>
  (
    await db.query<{ tenant_id: string; queued: number; running: number; queued_rows: number; running_rows: number }>(
      `SELECT c.tenant_id, c.queued, c.running,
              (SELECT count(*)::int FROM jobs j WHERE j.tenant_id = c.tenant_id AND j.status = 'queued') AS queued_rows,
              (SELECT count(*)::int FROM jobs j WHERE j.tenant_id = c.tenant_id AND j.status = 'running') AS running_rows
         FROM tenant_job_counts c ORDER BY c.tenant_id`,
    )
  ).rows;

describe('tenant_job_counts and aiaas_admit_jobs', () => {
  it('the migration fills the counters from the jobs already there', async () => {
    const before = mkdtempSync(join(tmpdir(), 'migrations-'));
    for (const name of readdirSync(all).filter((n) => n === 'migration_lock.toml' || n < MIGRATION))
      cpSync(join(all, name), join(before, name), { recursive: true });
    await migrate(url.toString(), before);
    await db.query(`INSERT INTO tenants (id, name, updated_at) VALUES ('ten_a', 'a', now()), ('ten_b', 'b', now()), ('ten_c', 'c', now())`);
    await db.query(
      `INSERT INTO jobs (id, tenant_id, type, model_id, status, updated_at)
       SELECT 'job_' || g, CASE WHEN g % 3 = 0 THEN 'ten_a' ELSE 'ten_b' END, 'training', 'mdl_x',
              (ARRAY['queued', 'running', 'succeeded', 'failed', 'canceled'])[1 + g % 5]::"JobStatus", now()
         FROM generate_series(1, 100) g`,
    );
    await migrate(url.toString(), all);
    const rows = await counted();
    expect(rows.map((r) => r.tenant_id)).toEqual(['ten_a', 'ten_b', 'ten_c']);
    for (const r of rows) expect([r.queued, r.running]).toEqual([r.queued_rows, r.running_rows]);
    expect(rows.find((r) => r.tenant_id === 'ten_b')!.queued).toBeGreaterThan(0);
    expect(rows.find((r) => r.tenant_id === 'ten_c')).toMatchObject({ queued: 0, running: 0 });
  });

  it('admits exactly max_queued per tenant from racing batches that mix tenants in any order, without deadlocks', async () => {
    await db.query(`DELETE FROM jobs`);
    const tenants = ['ten_a', 'ten_b', 'ten_c', 'ten_d'];
    await db.query(`INSERT INTO tenants (id, name, updated_at) SELECT t, t, now() FROM unnest($1::text[]) t ON CONFLICT DO NOTHING`, [
      tenants,
    ]);
    const database = new Database(url.toString(), 8);
    try {
      const admission = new AdmissionRepository(database);
      const job: NewJob = { type: 'training', modelId: 'mdl_x', hyperparameters: { epochs: 1 } };
      const limits = { maxQueuedJobs: 40, monthlyComputeSeconds: 1e9 };
      // 8 connections × 15 batches of 6 submissions, tenants shuffled within each batch: 180 submissions per tenant.
      let seed = 7;
      const random = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed / 2_147_483_648;
      };
      const answers = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const out: Array<{ tenant: string; refused?: string; count?: number }> = [];
          for (let b = 0; b < 15; b++) {
            const batch = Array.from({ length: 6 }, () => tenants[Math.floor(random() * tenants.length)]);
            const admitted = await admission.admit(batch.map((t) => encodeAdmission(t, job, limits)));
            admitted.forEach((a, i) => {
              out.push({ tenant: batch[i], refused: a.refused, count: a.count });
              if (a.job) expect(a.job).toMatchObject({ tenantId: batch[i], status: 'queued', eventSeq: 1 });
            });
          }
          return out;
        }),
      );
      const flat = answers.flat();
      for (const t of tenants) {
        const mine = flat.filter((a) => a.tenant === t);
        expect(mine.length).toBeGreaterThan(40);
        expect(mine.filter((a) => !a.refused)).toHaveLength(40);
        for (const r of mine.filter((a) => a.refused)) expect(r).toMatchObject({ refused: 'max_queued_jobs', count: 40 });
      }
      const rows = (await counted()).filter((r) => tenants.includes(r.tenant_id));
      expect(rows.map((r) => [r.tenant_id, r.queued, r.queued_rows])).toEqual(tenants.map((t) => [t, 40, 40]));
      // Every accepted job has its one job.queued event.
      const { rows: events } = await db.query(
        `SELECT count(*)::int AS n FROM jobs j JOIN job_events e ON e.job_id = j.id AND e.seq = 1 AND e.type = 'job.queued' WHERE j.tenant_id = ANY($1)`,
        [tenants],
      );
      expect(events[0].n).toBe(160);
    } finally {
      await database.close();
    }
  });

  it("answers each admitted job with its tenant's running jobs, from the counter row it locks", async () => {
    await db.query(`DELETE FROM jobs`);
    await db.query(`INSERT INTO tenants (id, name, updated_at) SELECT t, t, now() FROM unnest($1::text[]) t ON CONFLICT DO NOTHING`, [
      ['ten_a', 'ten_b'],
    ]);
    // ten_a runs 3 jobs, ten_b none.
    await db.query(
      `INSERT INTO jobs (id, tenant_id, type, model_id, status, updated_at)
       SELECT 'job_run' || g, 'ten_a', 'training', 'mdl_x', 'running', now() FROM generate_series(1, 3) g`,
    );
    const database = new Database(url.toString(), 2);
    try {
      const job: NewJob = { type: 'training', modelId: 'mdl_x' };
      const limits = { maxQueuedJobs: 10, monthlyComputeSeconds: 1e9 };
      const admitted = await new AdmissionRepository(database).admit(
        ['ten_b', 'ten_a', 'ten_a'].map((t) => encodeAdmission(t, job, limits)),
      );
      expect(admitted.map((a) => [a.job?.tenantId, a.running])).toEqual([
        ['ten_b', 0],
        ['ten_a', 3],
        ['ten_a', 3],
      ]);
    } finally {
      await database.close();
    }
  });

  it('refuses a tenant past monthly_compute_seconds once per batch, and a tenant that is gone, without failing the others', async () => {
    await db.query(`DELETE FROM jobs`);
    await db.query(`INSERT INTO usage_counters (tenant_id, metric, day, value) VALUES ('ten_a', 'compute_seconds', now()::date, 100)`);
    const database = new Database(url.toString(), 2);
    try {
      const job: NewJob = { type: 'training', modelId: 'mdl_x' };
      const limits = { maxQueuedJobs: 10, monthlyComputeSeconds: 100 };
      const admitted = await new AdmissionRepository(database).admit([
        encodeAdmission('ten_a', job, limits),
        encodeAdmission('ten_gone', job, limits),
        encodeAdmission('ten_b', job, limits),
        encodeAdmission('ten_a', job, { ...limits, monthlyComputeSeconds: 101 }),
      ]);
      expect(admitted.map((a) => a.refused ?? a.job?.tenantId)).toEqual(['monthly_compute_seconds', 'tenant_missing', 'ten_b', 'ten_a']);
      expect(admitted[0].count).toBe(100);
    } finally {
      await database.close();
    }
  });
});
