import { newId } from '@app/common';
import { camelRow, type Database } from './database.js';
import type { Job } from './generated/client.js';
import type { NewJob } from './jobs.js';

/** The quotas a submission is admitted under (the tenant's effective quotas when it was made). */
export interface AdmissionLimits {
  maxQueuedJobs: number;
  monthlyComputeSeconds: number;
}

/** What admission answers for one submission: the job written, or what refused it. */
export type Admitted =
  /** `running`: the tenant's running jobs when it was admitted (read under the batch's lock on its counter row). */
  | { job: Job; running: number; refused?: never; count?: never }
  | { refused: 'max_queued_jobs' | 'monthly_compute_seconds' | 'tenant_missing'; count: number; job?: never; running?: never };

/**
 * One submission as `aiaas_admit_jobs` reads it: a JSON object with the job's columns, its ids
 * (drawn here) and its limits. Encoded once, when the submission arrives, so that a batcher can
 * weigh it (`json.length`) and a batch costs one string join.
 */
export interface EncodedAdmission {
  readonly tenantId: string;
  readonly json: string;
}

export function encodeAdmission(tenantId: string, data: NewJob, limits: AdmissionLimits): EncodedAdmission {
  const json = JSON.stringify({
    id: newId('job'),
    event_id: newId('evt'),
    tenant_id: tenantId,
    type: data.type,
    model_id: data.modelId,
    version: data.version ?? null,
    alias: data.alias ?? null,
    dataset_id: data.datasetId ?? null,
    hyperparameters: data.hyperparameters ?? {},
    architecture: data.architecture ?? null,
    base_version: data.baseVersion ?? null,
    accelerator: data.accelerator ?? null,
    metadata: data.metadata ?? {},
    inputs: data.inputs ?? null,
    explain: data.explain ?? false,
    output: data.output ?? null,
    webhook_url: data.webhookUrl ?? null,
    webhook_events: data.webhookEvents ?? [],
    max_attempts: data.maxAttempts ?? 3,
    max_queued: limits.maxQueuedJobs,
    max_compute: limits.monthlyComputeSeconds,
  });
  return { tenantId, json };
}

/**
 * Job admission on plain `pg` (the hot write path), through the `aiaas_admit_jobs` function
 * (prisma/migrations/*_admission_batches): a batch of submissions, of any tenants, in one
 * statement and so one commit. Each tenant's counter row is locked in tenant order, its
 * submissions are admitted in order while max_queued_jobs (read from the counter, not counted)
 * and monthly_compute_seconds (summed once per tenant) leave room, and every accepted job is
 * inserted with its `job.queued` event, multi-row. `job.queued` is no webhook event: no outbox rows.
 */
export class AdmissionRepository {
  constructor(private readonly db: Database) {}

  /** Admits a batch; one answer per submission, in the batch's order. Committed when it returns. */
  async admit(batch: readonly EncodedAdmission[]): Promise<Admitted[]> {
    if (batch.length === 0) return [];
    // `ord` is each submission's place: the function admits a tenant's submissions in that order.
    const jobs = `[${batch.map((a, i) => `{"ord":${i},${a.json.slice(1)}`).join(',')}]`;
    const { rows } = await this.db.pool.query<Record<string, unknown>>(
      'SELECT a.admit_ord, a.admit_refused, a.admit_count, a.admit_running, (a.admit_job).* FROM aiaas_admit_jobs($1::jsonb) a ORDER BY a.admit_ord',
      [jobs],
    );
    if (rows.length !== batch.length) throw new Error(`aiaas_admit_jobs answered ${rows.length} rows for ${batch.length} submissions`);
    return rows.map((row) => {
      const refused = row.admit_refused as Exclude<Admitted['refused'], undefined> | null;
      if (refused) return { refused, count: Number(row.admit_count) };
      const { admit_ord: _o, admit_refused: _r, admit_count: _c, admit_running: running, ...job } = row;
      return { job: camelRow<Job>(job)!, running: Number(running) };
    });
  }
}
