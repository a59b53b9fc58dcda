import type { Database } from './database.js';

export interface UsageIncrement {
  tenantId: string;
  metric: string;
  /** UTC day, YYYY-MM-DD */
  day: string;
  value: number;
}

export interface UsageSnapshot {
  runningJobs: number;
  queuedJobs: number;
  storageBytes: number;
  computeSecondsThisMonth: number;
}

/** Metered usage. Raw `pg` because it sits on hot paths (every `GET /v1/me`, the request meter). */
export class UsageRepository {
  constructor(private readonly db: Database) {}

  /**
   * Adds increments; rows of tenants deleted meanwhile are dropped rather than failing the batch.
   * Increments of the same counter are summed first, and the rows are written in key order, so
   * that two flushes (API instances, workers) naming the same tenants in another order take their
   * row locks in the same order and never deadlock.
   */
  async add(increments: UsageIncrement[]): Promise<void> {
    if (increments.length === 0) return;
    await this.db.pool.query(
      `INSERT INTO usage_counters (tenant_id, metric, day, value)
       SELECT u.tenant_id, u.metric, u.day, sum(u.value)
       FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[]) AS u(tenant_id, metric, day, value)
       WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.tenant_id)
       GROUP BY u.tenant_id, u.metric, u.day
       ORDER BY u.tenant_id, u.metric, u.day
       ON CONFLICT (tenant_id, metric, day) DO UPDATE SET value = usage_counters.value + EXCLUDED.value`,
      [increments.map((i) => i.tenantId), increments.map((i) => i.metric), increments.map((i) => i.day), increments.map((i) => i.value)],
    );
  }

  async snapshot(tenantId: string): Promise<UsageSnapshot> {
    const { rows } = await this.db.pool.query<{ storage: number | null; compute: number | null; running: number; queued: number }>(
      `SELECT (SELECT storage_bytes FROM tenant_usage WHERE tenant_id = $1) AS storage,
              (SELECT sum(value)::float8 FROM usage_counters
                WHERE tenant_id = $1 AND metric = 'compute_seconds' AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS compute,
              (SELECT running FROM tenant_job_counts WHERE tenant_id = $1) AS running,
              (SELECT queued FROM tenant_job_counts WHERE tenant_id = $1) AS queued`,
      [tenantId],
    );
    const r = rows[0];
    return {
      runningJobs: r?.running ?? 0,
      queuedJobs: r?.queued ?? 0,
      storageBytes: r?.storage ?? 0,
      computeSecondsThisMonth: Math.round((r?.compute ?? 0) * 1000) / 1000,
    };
  }

  /** Totals per metric, and per day, between two UTC days inclusive. */
  async between(tenantId: string, from: string, to: string): Promise<Array<{ metric: string; day: string; value: number }>> {
    const { rows } = await this.db.pool.query<{ metric: string; day: string; value: number }>(
      `SELECT metric, to_char(day, 'YYYY-MM-DD') AS day, value FROM usage_counters
        WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day, metric`,
      [tenantId, from, to],
    );
    return rows;
  }
}

/** Jobs by type, then by status, created between two UTC days inclusive. */
export async function jobCounts(db: Database, tenantId: string, from: string, to: string): Promise<Record<string, Record<string, number>>> {
  const { rows } = await db.pool.query<{ type: string; status: string; n: number }>(
    `SELECT type::text, status::text, count(*)::int AS n FROM jobs
      WHERE tenant_id = $1 AND created_at >= $2::date AND created_at < $3::date + 1 GROUP BY type, status`,
    [tenantId, from, to],
  );
  const out: Record<string, Record<string, number>> = {};
  for (const r of rows) (out[r.type] ??= {})[r.status] = r.n;
  return out;
}

/**
 * Compute seconds of a tenant's jobs created between two days, by the backend that ran them (the
 * wall time of the compute on the worker, as each job row records it; sync predictions included).
 */
export async function computeByBackend(db: Database, tenantId: string, from: string, to: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ backend: string; seconds: number }>(
    `SELECT coalesce(backend, 'none') AS backend, sum(compute_seconds)::float8 AS seconds FROM jobs
      WHERE tenant_id = $1 AND created_at >= $2::date AND created_at < $3::date + 1 AND compute_seconds > 0 GROUP BY 1`,
    [tenantId, from, to],
  );
  return Object.fromEntries(rows.map((r) => [r.backend, Math.round(r.seconds * 1000) / 1000]));
}
