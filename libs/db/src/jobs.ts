import { effectiveQuotas, newId, type Quotas } from '@app/common';
import type { Database } from './database.js';
import { type Job, type JobEvent, Prisma } from './generated/client.js';
import { jobView } from './views.js';
import { isWebhookEvent, writeOutbox } from './webhooks.js';
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
  webhookUrl?: string | null;
  webhookEvents?: string[];
  maxAttempts?: number;
}

export interface JobFilter {
  type?: JobTypeName;
  status?: JobStatus;
  modelId?: string;
}

const ACTIVE: JobStatus[] = ['queued', 'running'];

/**
 * Jobs and their events. State changes are guarded transitions (an UPDATE that names the states
 * it may leave), each written with its event in one transaction, so that a job is never finished
 * twice however often a worker retries or two workers race.
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
        status: { in: ACTIVE },
        ...(what.datasetId ? { datasetId: what.datasetId } : {}),
        ...(what.modelId ? { modelId: what.modelId } : {}),
      },
    });
    return n > 0;
  }

  /** Queued jobs older than `olderThanMs`, oldest first: what the reconciler checks against the queues. */
  queuedBefore(olderThanMs: number, limit = 500): Promise<Job[]> {
    return this.db.prisma.job.findMany({
      where: { status: 'queued', createdAt: { lt: new Date(Date.now() - olderThanMs) } },
      orderBy: { createdAt: 'asc' },
      take: limit,
    });
  }

  /** GPU jobs queued (since their last change of state) for longer than `olderThanMs`, oldest first. */
  queuedForGpuBefore(olderThanMs: number, limit = 500): Promise<Job[]> {
    return this.db.prisma.job.findMany({
      where: { status: 'queued', accelerator: 'gpu', updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
      orderBy: { updatedAt: 'asc' },
      take: limit,
    });
  }

  /**
   * Applies a guarded transition and writes its event, in one transaction. Returns the updated job
   * and the event, or null when the job was not in one of `from` (someone else moved it first).
   */
  async transition(
    jobId: string,
    from: JobStatus[],
    change: Prisma.JobUpdateManyMutationInput,
    event: { type: string; data?: Prisma.InputJsonValue } | null,
    extra?: (tx: Prisma.TransactionClient, job: Job) => Promise<void>,
  ): Promise<{ job: Job; event: JobEvent | null } | null> {
    return this.db.prisma.$transaction(async (tx) => {
      // The event's number comes from the job row this UPDATE locks: per job, in commit order, no gaps.
      const data = event ? { ...change, eventSeq: { increment: 1 } } : change;
      const { count } = await tx.job.updateMany({ where: { id: jobId, status: { in: from } }, data });
      if (count === 0) return null;
      const job = (await tx.job.findUnique({ where: { id: jobId } }))!;
      if (extra) await extra(tx, job);
      const written = event
        ? await tx.jobEvent.create({ data: { id: newId('evt'), jobId, seq: job.eventSeq, type: event.type, data: event.data ?? {} } })
        : null;
      if (event && isWebhookEvent(event.type)) await writeOutbox(tx, { tenantId: job.tenantId, type: event.type, data: jobView(job), job });
      return { job, event: written };
    });
  }

  /** Records progress (not a state change) and its event, unless the job has left `running`. */
  progress(jobId: string, progress: Prisma.InputJsonValue, data: Prisma.InputJsonValue) {
    return this.transition(jobId, ['running'], { progress }, { type: 'job.progress', data });
  }

  /**
   * A worker takes the job: queued|running → running (running again when a stalled or crashed
   * attempt is picked up elsewhere), counting the attempt, with its `job.started` event
   * (`{attempt, worker_id, backend}`), and the quotas it runs under. Null when the job has left queued/running.
   */
  async start(
    jobId: string,
    workerId: string,
    backend: string,
  ): Promise<{ job: Job; event: JobEvent; quotas: Quotas } | 'at_concurrency_limit' | null> {
    return this.db.prisma.$transaction(async (tx) => {
      // max_concurrent_jobs holds across all workers: starts of one tenant's jobs take turns under
      // this lock, and a queued job past the limit does not start (a job already running, handed
      // back by a stall, does: it holds its own slot).
      const owner = await tx.job.findUnique({
        where: { id: jobId },
        select: { tenantId: true, status: true, tenant: { select: { plan: true, quotas: true } } },
      });
      if (!owner) return null;
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`run:${owner.tenantId}`}))`;
      const quotas = effectiveQuotas(owner.tenant.plan, owner.tenant.quotas as Record<string, unknown>);
      if (owner.status === 'queued') {
        const running = await tx.job.count({ where: { tenantId: owner.tenantId, status: 'running' } });
        if (running >= quotas.max_concurrent_jobs) return 'at_concurrency_limit';
      }
      const { count } = await tx.job.updateMany({
        where: { id: jobId, status: { in: ACTIVE } },
        data: { status: 'running', attempts: { increment: 1 }, workerId, backend, error: Prisma.DbNull, eventSeq: { increment: 1 } },
      });
      if (count === 0) return null;
      await tx.$executeRaw`UPDATE jobs SET started_at = now() WHERE id = ${jobId} AND started_at IS NULL`;
      const job = (await tx.job.findUnique({ where: { id: jobId } }))!;
      const event = await tx.jobEvent.create({
        data: {
          id: newId('evt'),
          jobId,
          seq: job.eventSeq,
          type: 'job.started',
          data: { attempt: job.attempts, worker_id: workerId, backend },
        },
      });
      await writeOutbox(tx, { tenantId: job.tenantId, type: 'job.started', data: jobView(job), job });
      return { job, event, quotas };
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

  /** Writes a job's output pages (inside the transition that finishes it), replacing any of an earlier attempt. */
  async writeOutputs(tx: Prisma.TransactionClient, jobId: string, pages: Prisma.InputJsonValue[]): Promise<void> {
    await tx.jobOutput.deleteMany({ where: { jobId } });
    if (pages.length > 0) await tx.jobOutput.createMany({ data: pages.map((data, page) => ({ jobId, page, data })) });
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

  /** Whether a worker whose backend runs on a GPU has heartbeated within `withinMs` (else a gpu job is `waiting_for: "gpu"`). */
  async gpuWorkerOnline(withinMs: number): Promise<boolean> {
    const n = await this.db.prisma.workerHeartbeat.count({ where: { gpu: true, lastSeenAt: { gt: new Date(Date.now() - withinMs) } } });
    return n > 0;
  }

  /** Asks for a job to stop: marks it; returns the job as it stands. */
  async requestCancel(tenantId: string | null, jobId: string): Promise<Job | null> {
    const where = tenantId ? { id: jobId, tenantId } : { id: jobId };
    const { count } = await this.db.prisma.job.updateMany({ where: { ...where, status: { in: ACTIVE } }, data: { cancelRequested: true } });
    const job = await this.db.prisma.job.findFirst({ where });
    return count === 0 && job && ACTIVE.includes(job.status) ? null : job;
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
