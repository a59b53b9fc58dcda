import { ApiError, type JobStatus, STATUSES } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { AuditRepository, Database, type Job, JobRepository, onlineWorkerCount, toPage, WebhookRepository, WORKER_STALE_MS } from '@app/db';
import { ALL_QUEUES, ClusterMetrics, PredictQueue, WEBHOOKS_QUEUE, type RedisClient } from '@app/queue';
import { Inject, Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import type { z } from 'zod';
import type { Actor } from '../http/actor.js';
import { REDIS } from '../infra/infra.module.js';
import { jobView } from '../jobs/jobs.dto.js';
import { JobScheduling } from '../jobs/job-scheduling.js';
import { JobsService } from '../jobs/jobs.service.js';
import type { AdminJobListQuery, OverviewSchema } from './operations.dto.js';

/**
 * What an operator runs the service with: the overview, every tenant's jobs, cancel and retry,
 * and the cluster-wide metrics. Every figure comes from the data the tenant API shows (the job
 * rows, the scheduler, the queues, the heartbeats, the outbox), so a sum over tenants agrees.
 */
@Injectable()
export class OperationsService {
  /** What GET /metrics serves after the process's own figures; every figure is computed when scraped. */
  private readonly registry = new Registry();
  private readonly predictQueue: PredictQueue;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly db: Database,
    private readonly jobsRepo: JobRepository,
    private readonly jobs: JobsService,
    private readonly scheduling: JobScheduling,
    private readonly webhooks: WebhookRepository,
    private readonly audit: AuditRepository,
    @Inject(REDIS) redis: RedisClient,
  ) {
    this.predictQueue = new PredictQueue(config, redis);
    this.registerGauges();
    new ClusterMetrics(config, redis).register(this.registry);
  }

  async overview(): Promise<z.infer<typeof OverviewSchema>> {
    const [byStatus, byType, recent, latency, tenants, workers, webhooks, queues] = await Promise.all([
      this.db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM jobs GROUP BY status'),
      this.db.pool.query<{ type: string; status: string; n: number }>(
        'SELECT type, status, count(*)::int AS n FROM jobs GROUP BY type, status',
      ),
      this.db.pool.query<{ win: string; finished: number; succeeded: number; failed: number }>(
        `SELECT w.win,
                count(j.id) FILTER (WHERE j.status IN ('succeeded', 'failed', 'canceled'))::int AS finished,
                count(j.id) FILTER (WHERE j.status = 'succeeded')::int AS succeeded,
                count(j.id) FILTER (WHERE j.status = 'failed')::int AS failed
           FROM (VALUES ('5m', interval '5 minutes'), ('1h', interval '1 hour')) AS w(win, span)
           LEFT JOIN jobs j ON j.finished_at > now() - w.span
          GROUP BY w.win`,
      ),
      this.db.pool.query<{ wait_p50: number | null; wait_p95: number | null; run_p50: number | null; run_p95: number | null }>(
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) AS wait_p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) AS wait_p95,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)) AS run_p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)) AS run_p95
           FROM jobs WHERE finished_at > now() - interval '1 hour' AND started_at IS NOT NULL`,
      ),
      this.db.pool.query<{ tenant_id: string; name: string; queued: number; running: number }>(
        `SELECT t.id AS tenant_id, t.name,
                count(*) FILTER (WHERE j.status = 'queued')::int AS queued,
                count(*) FILTER (WHERE j.status = 'running')::int AS running
           FROM jobs j JOIN tenants t ON t.id = j.tenant_id
          WHERE j.status IN ('queued', 'running')
          GROUP BY t.id, t.name ORDER BY queued DESC, running DESC LIMIT 100`,
      ),
      this.db.pool.query<{ online: number; slots: number; busy: number }>(
        `SELECT count(*)::int AS online, coalesce(sum(concurrency), 0)::int AS slots, coalesce(sum(cardinality(current_jobs)), 0)::int AS busy
           FROM worker_heartbeats WHERE last_seen_at > now() - make_interval(secs => $1)`,
        [WORKER_STALE_MS / 1000],
      ),
      this.webhooks.counts(),
      this.queueDepths(),
    ]);
    const count = (status: string) => byStatus.rows.find((r) => r.status === status)?.n ?? 0;
    const window = (w: string) => {
      const r = recent.rows.find((x) => x.win === w) ?? { finished: 0, succeeded: 0, failed: 0 };
      return { finished: r.finished, succeeded: r.succeeded, failed: r.failed };
    };
    const last5 = window('5m');
    const l = latency.rows[0];
    const num = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(Number(x) * 1000) / 1000);
    const types: Record<string, Record<string, number>> = {};
    for (const r of byType.rows) (types[r.type] ??= {})[r.status] = r.n;
    return {
      object: 'overview',
      generated_at: new Date().toISOString(),
      jobs: {
        by_status: Object.fromEntries(STATUSES.map((s) => [s, count(s)])) as Record<JobStatus, number>,
        by_type: types,
      },
      recent: {
        last_5m: last5,
        last_1h: window('1h'),
        throughput_per_minute: Math.round((last5.finished / 5) * 100) / 100,
        failure_rate: last5.finished ? Math.round((last5.failed / last5.finished) * 1000) / 1000 : 0,
      },
      latency_seconds: {
        queue_wait: { p50: num(l?.wait_p50), p95: num(l?.wait_p95) },
        run: { p50: num(l?.run_p50), p95: num(l?.run_p95) },
      },
      queues,
      tenants: tenants.rows,
      workers: workers.rows[0],
      webhooks,
    };
  }

  /** Every queue: jobs waiting in the fair scheduler, then in BullMQ (ready, active, delayed); the sync predict list. */
  private async queueDepths() {
    const scheduled = new Map<string, number>();
    for (const w of await this.scheduling.scheduler.waiting().catch(() => []))
      scheduled.set(w.queue, (scheduled.get(w.queue) ?? 0) + w.jobs);
    const names = [...ALL_QUEUES, WEBHOOKS_QUEUE];
    const counts = await Promise.all(
      names.map((name) =>
        this.scheduling.queues.call(name, (q) => q.getJobCounts('wait', 'prioritized', 'active', 'delayed')).catch(() => null),
      ),
    );
    const out = names.map((name, i) => {
      const c = counts[i];
      return {
        name,
        scheduled: scheduled.get(name) ?? 0,
        ready: c ? (c.wait ?? 0) + (c.prioritized ?? 0) : null,
        active: c ? (c.active ?? 0) : null,
        delayed: c ? (c.delayed ?? 0) : null,
      };
    });
    out.push({ name: 'predict', scheduled: 0, ready: await this.predictQueue.length().catch(() => null), active: null, delayed: null });
    return out;
  }

  async listJobs(query: z.infer<typeof AdminJobListQuery>) {
    const rows = await this.jobsRepo.list(query.tenant ?? null, {
      limit: query.limit,
      starting_after: query.starting_after,
      type: query.type,
      status: query.status,
    });
    const page = toPage(rows, query.limit, (j) => j);
    return { ...page, data: await Promise.all(page.data.map(async (j) => ({ ...(await this.jobs.view(j)), tenant_id: j.tenantId }))) };
  }

  async job(id: string) {
    const j = await this.jobsRepo.byId(id);
    if (!j) throw ApiError.notFound('job', id);
    return { ...(await this.jobs.view(j)), tenant_id: j.tenantId };
  }

  async events(id: string, query: { limit: number; starting_after?: string }) {
    const j = await this.jobsRepo.byId(id);
    if (!j) throw ApiError.notFound('job', id);
    return this.jobs.events(j.tenantId, id, query);
  }

  async cancel(actor: Actor, id: string) {
    const job = await this.jobs.cancel(null, id);
    await this.record(actor, job, 'job.canceled_by_admin');
    return { ...jobView(job), tenant_id: job.tenantId };
  }

  /** A failed job runs again, as a new attempt (libs/jobs's adminRetry), and the admin's action is audited. */
  async retry(actor: Actor, id: string) {
    const current = await this.jobsRepo.byId(id);
    if (!current) throw ApiError.notFound('job', id);
    if (current.status !== 'failed') {
      throw new ApiError(409, 'invalid_request_error', 'job_not_failed', `Job ${id} is ${current.status}; only failed jobs can be retried`);
    }
    const moved = await this.scheduling.lifecycle.adminRetry(current);
    if (!moved) throw new ApiError(409, 'invalid_request_error', 'job_not_failed', `Job ${id} changed meanwhile; look again`);
    await this.record(actor, moved.job, 'job.retried_by_admin');
    return { ...(await this.jobs.view(moved.job)), tenant_id: moved.job.tenantId };
  }

  /** Webhook messages that failed for good, or are failing (pending after a failed attempt), newest first. */
  async webhookFailures(query: { limit: number; state: 'failed' | 'failing' }) {
    const { rows } = await this.db.pool.query<{
      id: string;
      tenant_id: string;
      endpoint_id: string | null;
      url: string | null;
      event_type: string;
      status: string;
      attempts: number;
      last_error: string | null;
      next_attempt_at: Date;
      created_at: Date;
    }>(
      `SELECT m.id, m.tenant_id, m.endpoint_id, coalesce(e.url, m.url) AS url, m.event_type, m.status::text, m.attempts, m.last_error, m.next_attempt_at, m.created_at
         FROM webhook_messages m LEFT JOIN webhook_endpoints e ON e.id = m.endpoint_id
        WHERE ${query.state === 'failed' ? `m.status = 'failed'` : `m.status IN ('pending', 'queued') AND m.attempts > 0`}
        ORDER BY m.updated_at DESC LIMIT $1`,
      [query.limit],
    );
    return {
      object: 'list' as const,
      has_more: rows.length === query.limit,
      data: rows.map((r) => ({
        id: r.id,
        object: 'webhook_failure' as const,
        tenant_id: r.tenant_id,
        endpoint_id: r.endpoint_id,
        url: r.url ?? '',
        event_type: r.event_type,
        status: r.status,
        attempts: r.attempts,
        last_error: r.last_error,
        next_attempt_at: r.status === 'failed' ? null : r.next_attempt_at.toISOString(),
        created_at: r.created_at.toISOString(),
      })),
    };
  }

  /** Cluster-wide figures for GET /metrics (Prometheus text): jobs by status, queue depths, workers, and what workers counted. */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  /** Jobs by status, queue depths and workers online: prom-client gauges that ask PostgreSQL and the queues when scraped. */
  private registerGauges(): void {
    const { db, registry } = this;
    const queueDepths = () => this.queueDepths();
    new Gauge({
      name: 'aiaas_jobs',
      help: 'Jobs by status (cluster-wide, from PostgreSQL)',
      labelNames: ['scope', 'status'] as const,
      registers: [registry],
      async collect() {
        const { rows } = await db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM jobs GROUP BY status');
        this.reset();
        for (const status of STATUSES) this.set({ scope: 'cluster', status }, rows.find((r) => r.status === status)?.n ?? 0);
      },
    });
    new Gauge({
      name: 'aiaas_queue_depth',
      help: 'Jobs waiting per queue: in the fair scheduler, and in BullMQ (ready, active, delayed)',
      labelNames: ['scope', 'queue', 'stage'] as const,
      registers: [registry],
      async collect() {
        const queues = await queueDepths();
        this.reset();
        for (const q of queues) {
          for (const stage of ['scheduled', 'ready', 'active', 'delayed'] as const) {
            const n = q[stage];
            if (n !== null) this.set({ scope: 'cluster', queue: q.name, stage }, n);
          }
        }
      },
    });
    new Gauge({
      name: 'aiaas_workers_online',
      help: 'Workers that heartbeated in the last 30 s',
      labelNames: ['scope'] as const,
      registers: [registry],
      async collect() {
        this.set({ scope: 'cluster' }, await onlineWorkerCount(db));
      },
    });
  }

  private async record(actor: Actor, job: Job, action: string): Promise<void> {
    await this.db.prisma.$transaction((tx) =>
      this.audit.record(tx, { ...actor, tenantId: job.tenantId, action, targetType: 'job', targetId: job.id }),
    );
  }
}
