export const QUOTA_NAMES = [
  'requests_per_minute',
  'max_concurrent_jobs',
  'max_queued_jobs',
  'monthly_compute_seconds',
  'max_storage_bytes',
  'max_dataset_rows',
  'max_model_parameters',
  // A job's wall time from its first start (docs/jobs.md, "Time limit").
  'max_job_seconds',
  'max_api_keys',
  'max_webhook_endpoints',
  'max_idempotency_records',
] as const;

export type QuotaName = (typeof QUOTA_NAMES)[number];
export type Quotas = Record<QuotaName, number>;

export const PLANS = ['free', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];

const GiB = 1024 ** 3;

export const PLAN_QUOTAS: Record<Plan, Quotas> = {
  free: {
    requests_per_minute: 600,
    max_concurrent_jobs: 2,
    max_queued_jobs: 100,
    monthly_compute_seconds: 10 * 3600,
    max_storage_bytes: 1 * GiB,
    max_dataset_rows: 1_000_000,
    max_model_parameters: 5_000_000,
    max_job_seconds: 3600,
    max_api_keys: 50,
    max_webhook_endpoints: 16,
    max_idempotency_records: 20_000,
  },
  pro: {
    requests_per_minute: 6_000,
    max_concurrent_jobs: 8,
    max_queued_jobs: 1_000,
    monthly_compute_seconds: 200 * 3600,
    max_storage_bytes: 50 * GiB,
    max_dataset_rows: 10_000_000,
    max_model_parameters: 50_000_000,
    max_job_seconds: 6 * 3600,
    max_api_keys: 500,
    max_webhook_endpoints: 64,
    max_idempotency_records: 200_000,
  },
  enterprise: {
    requests_per_minute: 60_000,
    max_concurrent_jobs: 32,
    max_queued_jobs: 10_000,
    monthly_compute_seconds: 2_000 * 3600,
    max_storage_bytes: 500 * GiB,
    max_dataset_rows: 100_000_000,
    max_model_parameters: 500_000_000,
    max_job_seconds: 24 * 3600,
    max_api_keys: 5_000,
    max_webhook_endpoints: 256,
    max_idempotency_records: 2_000_000,
  },
};

/** The plan's quotas with the tenant's overrides on top. */
export function effectiveQuotas(plan: string, overrides: Partial<Record<string, unknown>>): Quotas {
  const base = PLAN_QUOTAS[(PLANS as readonly string[]).includes(plan) ? (plan as Plan) : 'free'];
  const out = { ...base };
  for (const name of QUOTA_NAMES) {
    const v = overrides[name];
    if (typeof v === 'number' && Number.isFinite(v)) out[name] = v;
  }
  return out;
}

/**
 * How much of the workers a plan's tenants get when several tenants have work waiting: the fair
 * scheduler dispatches in proportion to these weights (see docs/scheduling.md).
 */
export const PLAN_WEIGHTS: Record<Plan, number> = { free: 1, pro: 2, enterprise: 4 };

/** The scheduler's view of a tenant: its max_concurrent_jobs and its plan's weight. */
export function schedulingShare(plan: string, quotas: Pick<Quotas, 'max_concurrent_jobs'>): { cap: number; weight: number } {
  const known = (PLANS as readonly string[]).includes(plan) ? (plan as Plan) : 'free';
  return { cap: quotas.max_concurrent_jobs, weight: PLAN_WEIGHTS[known] };
}
