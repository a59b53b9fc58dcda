import { effectiveQuotas, isTerminal, schedulingShare } from '@app/common';
import type { AppConfig } from '@app/config';
import { type Database, eventView, type Job, type JobEvent } from '@app/db';
import {
  type ClusterMetrics,
  coalescingPublisher,
  dispatchChannel,
  invalidationChannel,
  jobCancelChannel,
  jobEventsChannel,
  type JobQueues,
  type Scheduler,
  type TenantShare,
  type RedisClient,
  publishSharded,
} from '@app/queue';

/** What follows a committed transition outside PostgreSQL. */
export interface JobEffects {
  /** The event is committed: tell whoever listens (streams, `Prefer: wait`, usage caches, metrics). */
  published(event: JobEvent, job: Job): void;
}

/** Where queued jobs wait for a worker (the fair scheduler, then BullMQ), as the lifecycle needs it. */
export interface JobQueuePort {
  /** Hands a queued job to the scheduler, with its tenant's share (read when not given), and wakes the workers. */
  schedule(job: Job, share?: TenantShare): Promise<void>;
  /** Takes a job that will not run out of the scheduler and BullMQ, and gives back a slot lease it held. */
  unschedule(job: Job): Promise<void>;
  /** Tells the worker running the job to stop it. */
  stopRunning(jobId: string): Promise<void>;
}

/** For a lifecycle that only moves rows (tests of the transitions). */
export const NO_QUEUES: JobQueuePort = {
  schedule: async () => undefined,
  unschedule: async () => undefined,
  stopRunning: async () => undefined,
};

type Warn = (message: string) => void;

/**
 * Every event, once committed, goes to the job's channel. A change of state also changes the
 * tenant's usage (running and queued jobs, compute): API instances drop their cached snapshot of
 * it. A job that ended adds its wait and run times to the cluster-wide histograms of GET /metrics.
 */
export class RedisJobEffects implements JobEffects {
  constructor(
    private readonly config: AppConfig,
    private readonly redis: RedisClient,
    private readonly warn: Warn,
    private readonly metrics?: ClusterMetrics,
    private readonly usageChanged?: (tenantId: string) => void,
  ) {}

  published(event: JobEvent, job: Job): void {
    const warn = (err: Error) => this.warn(`publish ${event.type} of ${event.jobId}: ${err.message}`);
    publishSharded(this.config, this.redis, jobEventsChannel(this.config, event.jobId), JSON.stringify(eventView(event))).catch(warn);
    if (event.type === 'job.progress') return;
    if (this.usageChanged) this.usageChanged(job.tenantId);
    else this.redis.publish(invalidationChannel(this.config), JSON.stringify({ usageOf: job.tenantId })).catch(warn);
    if (this.metrics && isTerminal(job.status) && job.finishedAt) {
      const started = job.startedAt ?? job.finishedAt;
      const wait = (started.getTime() - job.createdAt.getTime()) / 1000;
      const run = (job.finishedAt.getTime() - started.getTime()) / 1000;
      this.metrics.observeJob(job.type, job.status, wait, run).catch((err: Error) => this.warn(`metrics of ${job.id}: ${err.message}`));
    }
  }
}

/** The scheduler and BullMQ behind JobQueuePort. */
export class SchedulerQueues implements JobQueuePort {
  private readonly kick: (channel: string, message: string) => Promise<void>;

  constructor(
    private readonly config: AppConfig,
    private readonly db: Database,
    private readonly redis: RedisClient,
    private readonly scheduler: Scheduler,
    private readonly queues: JobQueues,
  ) {
    this.kick = coalescingPublisher(redis);
  }

  /** If Redis cannot take the job now, it stays queued in PostgreSQL and the reconciler enqueues it later. */
  async schedule(job: Job, share?: TenantShare): Promise<void> {
    const given = share ?? (await this.shareOf(job.tenantId));
    if (!given) return;
    // The wake-up follows the enqueue on the same connection (commands run in the order sent), so
    // the workers woken find the job; the jobs scheduled in one turn share one wake-up per type (a
    // wake-up after a failed enqueue finds nothing, which is harmless).
    await Promise.all([this.scheduler.enqueue(job, given), this.kick(dispatchChannel(this.config), job.type)]);
  }

  async unschedule(job: Job): Promise<void> {
    await this.scheduler.remove(job).catch(() => false);
    await this.queues.remove(job).catch(() => false);
    await this.scheduler.release(job.tenantId, job.id).catch(() => undefined);
  }

  async stopRunning(jobId: string): Promise<void> {
    await this.redis.publish(jobCancelChannel(this.config), jobId).catch(() => undefined);
  }

  private async shareOf(tenantId: string): Promise<TenantShare | null> {
    const { rows } = await this.db.pool.query<{ plan: string; quotas: Record<string, unknown> }>(
      'SELECT plan, quotas FROM tenants WHERE id = $1',
      [tenantId],
    );
    return rows[0] ? schedulingShare(rows[0].plan, effectiveQuotas(rows[0].plan, rows[0].quotas)) : null;
  }
}
