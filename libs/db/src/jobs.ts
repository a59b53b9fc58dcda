import { ACTIVE } from '@app/common';
import { camelRow, type Database } from './database.js';
import { type Job, type JobEvent, Prisma } from './generated/client.js';
import { pageArgs, type PageQuery } from './pagination.js';

export type { Job, JobEvent };
export type JobStatus = Job['status'];
export type JobTypeName = Job['type'];

export interface NewJob {
  type: JobTypeName;
  modelId: string;
  version?: number | null;
  alias?: string | null;
  datasetId?: string | null;
  hyperparameters?: Prisma.InputJsonValue;
  architecture?: Prisma.InputJsonValue | null;
  baseVersion?: number | null;
  accelerator?: string | null;
  metadata?: Prisma.InputJsonValue;
  inputs?: Prisma.InputJsonValue | null;
  explain?: boolean;
  /** Batch prediction: the rows go to an output file of this format. */
  output?: { format: 'ndjson' | 'csv'; include_inputs: boolean } | null;
  webhookUrl?: string | null;
  webhookEvents?: string[];
  maxAttempts?: number;
}

export interface JobFilter {
  type?: JobTypeName;
  status?: JobStatus;
  modelId?: string;
}

/**
 * Jobs and their events, read. A job's admission is AdmissionRepository (libs/db/src/admission.ts);
 * every later change of a job's status is libs/jobs's JobLifecycle (guarded transitions on plain
 * `pg`), never this class.
 */
export class JobRepository {
  constructor(private readonly db: Database) {}

  get(tenantId: string, id: string): Promise<Job | null> {
    return this.db.prisma.job.findFirst({ where: { tenantId, id } });
  }

  /** A job by id alone: for workers, which are handed ids by the queue. */
  byId(id: string): Promise<Job | null> {
    return this.db.prisma.job.findUnique({ where: { id } });
  }

  async list(tenantId: string | null, query: PageQuery & JobFilter): Promise<Job[]> {
    const scope = tenantId ? { tenantId } : {};
    const cursor = query.starting_after ? await this.db.prisma.job.findFirst({ where: { ...scope, id: query.starting_after } }) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.job.findMany({
      ...args,
      where: {
        ...args.where,
        ...scope,
        ...(query.type ? { type: query.type } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.modelId ? { modelId: query.modelId } : {}),
      },
    });
  }

  /** Events after `afterSeq` (exclusive), oldest first. */
  events(jobId: string, afterSeq = 0n, limit = 1000): Promise<JobEvent[]> {
    return this.db.prisma.jobEvent.findMany({ where: { jobId, seq: { gt: afterSeq } }, orderBy: { seq: 'asc' }, take: limit });
  }

  /** Whether a queued or running job uses the dataset or the model (deleting either is then a 409). */
  async inUse(tenantId: string, what: { datasetId?: string; modelId?: string }): Promise<boolean> {
    const n = await this.db.prisma.job.count({
      where: {
        tenantId,
        status: { in: [...ACTIVE] },
        ...(what.datasetId ? { datasetId: what.datasetId } : {}),
        ...(what.modelId ? { modelId: what.modelId } : {}),
      },
    });
    return n > 0;
  }

  /** Queued jobs older than `olderThanMs`, oldest first: what the reconciler checks against the queues. */
  async queuedBefore(olderThanMs: number, limit = 500): Promise<Job[]> {
    // Plain pg: the reconciler reads up to `limit` rows every few seconds.
    const { rows } = await this.db.pool.query(
      `SELECT * FROM jobs WHERE status = 'queued' AND created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2`,
      [olderThanMs / 1000, limit],
    );
    return rows.map((r) => camelRow<Job>(r)!);
  }

  /** GPU jobs queued (since their last change of state) for longer than `olderThanMs`, oldest first. */
  queuedForGpuBefore(olderThanMs: number, limit = 500): Promise<Job[]> {
    return this.db.prisma.job.findMany({
      where: { status: 'queued', accelerator: 'gpu', updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
      orderBy: { updatedAt: 'asc' },
      take: limit,
    });
  }

  /** Status and attempt limit of some jobs, in one round trip (the dispatcher hands them to BullMQ). */
  async attemptsOf(ids: string[]): Promise<Map<string, { status: string; maxAttempts: number }>> {
    const { rows } = await this.db.pool.query<{ id: string; status: string; max_attempts: number }>(
      'SELECT id, status, max_attempts FROM jobs WHERE id = ANY($1)',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, { status: r.status, maxAttempts: r.max_attempts }]));
  }

  /** Running jobs not updated for `olderThanMs`: the reconciler checks them against the queues (their worker may be gone). */
  runningBefore(olderThanMs: number, limit = 500): Promise<Job[]> {
    return this.db.prisma.job.findMany({
      where: { status: 'running', updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
      orderBy: { updatedAt: 'asc' },
      take: limit,
    });
  }

  /**
   * One page of a job's stored output (`GET /v1/jobs/{id}/output?page=`), scoped by tenant, with
   * the number of pages. Null when the job is not the tenant's; `data` null past the last page.
   */
  async outputPage(tenantId: string, jobId: string, page: number): Promise<{ data: unknown; pages: number } | null> {
    const job = await this.db.prisma.job.findFirst({ where: { tenantId, id: jobId }, select: { id: true } });
    if (!job) return null;
    const [row, pages] = await Promise.all([
      this.db.prisma.jobOutput.findUnique({ where: { jobId_page: { jobId, page } } }),
      this.db.prisma.jobOutput.count({ where: { jobId } }),
    ]);
    return { data: row?.data ?? null, pages };
  }

  /**
   * What a queued job of the tenant waits for, in one round trip: its running jobs (the counter
   * row, not a count over its jobs), its plan and quotas, and for a GPU job the GPU workers online
   * (null otherwise).
   */
  async waitContext(
    tenantId: string,
    gpu: boolean,
  ): Promise<{ gpuWorkers: number | null; running: number; plan: string; quotas: Record<string, unknown> } | null> {
    const { rows } = await this.db.pool.query<{ gpu: number | null; running: number; plan: string; quotas: Record<string, unknown> }>(
      `SELECT CASE WHEN $3 THEN (SELECT count(*)::int FROM worker_heartbeats WHERE gpu AND last_seen_at > now() - make_interval(secs => $2)) END AS gpu,
              coalesce(c.running, 0) AS running, t.plan, t.quotas
         FROM tenants t LEFT JOIN tenant_job_counts c ON c.tenant_id = t.id
        WHERE t.id = $1`,
      [tenantId, WORKER_STALE_MS / 1000, gpu],
    );
    const r = rows[0];
    return r ? { gpuWorkers: r.gpu, running: r.running, plan: r.plan, quotas: r.quotas } : null;
  }

  /** Jobs of its queue accepted before it and still queued, plus one (its place when the scheduler cannot say). */
  async arrivalPosition(job: Pick<Job, 'type' | 'accelerator' | 'createdAt' | 'id'>): Promise<number> {
    const { rows } = await this.db.pool.query<{ ahead: number }>(
      `SELECT count(*)::int AS ahead FROM jobs WHERE status = 'queued' AND type = $1 AND accelerator IS NOT DISTINCT FROM $2 AND (created_at, id) < ($3, $4)`,
      [job.type, job.accelerator, job.createdAt, job.id],
    );
    return rows[0].ahead + 1;
  }

  /** The `seq` of one of the job's events (an events page's cursor), or null when it is not the job's. */
  async eventSeq(jobId: string, eventId: string): Promise<bigint | null> {
    const e = await this.db.prisma.jobEvent.findFirst({ where: { id: eventId, jobId }, select: { seq: true } });
    return e?.seq ?? null;
  }

  /** Whether a worker whose backend runs on a GPU has heartbeated within `withinMs` (else a gpu job is `waiting_for: "gpu"`). */
  async gpuWorkerOnline(withinMs: number): Promise<boolean> {
    const n = await this.db.prisma.workerHeartbeat.count({ where: { gpu: true, lastSeenAt: { gt: new Date(Date.now() - withinMs) } } });
    return n > 0;
  }
}

/** The JSON of an event row, as API.md shows it and as it is published. */
export function eventView(e: JobEvent) {
  return {
    id: e.id,
    job_id: e.jobId,
    seq: Number(e.seq),
    type: e.type,
    data: e.data as Record<string, unknown>,
    created_at: e.createdAt.toISOString(),
  };
}

/** A worker whose heartbeat is older than this is gone (the API's views, the overview, the metrics). */
export const WORKER_STALE_MS = 30_000;

/** Workers whose heartbeat is younger than WORKER_STALE_MS (plain pg: request paths ask it). */
export async function onlineWorkerCount(db: Database): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM worker_heartbeats WHERE last_seen_at > now() - make_interval(secs => $1)',
    [WORKER_STALE_MS / 1000],
  );
  return rows[0].n;
}

/** The workers online (heartbeat younger than WORKER_STALE_MS), newest first: GET /v1/admin/workers. */
export function onlineWorkers(db: Database) {
  return db.prisma.workerHeartbeat.findMany({
    where: { lastSeenAt: { gt: new Date(Date.now() - WORKER_STALE_MS) } },
    orderBy: { startedAt: 'desc' },
  });
}
