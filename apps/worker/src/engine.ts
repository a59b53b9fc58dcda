import { schedulingShare, effectiveQuotas } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, eventView, type Job, type JobEvent, JobRepository, UsageRepository } from '@app/db';
import { type BackendInfo, type EpochProgress, isMlError } from '@app/ml';
import {
  ALL_QUEUES,
  bullPrefix,
  ClusterMetrics,
  createRedis,
  type Dispatched,
  dispatchChannel,
  invalidationChannel,
  JOB_TYPES,
  jobCancelChannel,
  jobEventsChannel,
  type JobPayload,
  JobQueues,
  type JobType,
  queueName,
  type SchedulableJob,
  Scheduler,
  schedulerLeaseMs,
} from '@app/queue';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { type Job as BullJob, DelayedError, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { performance } from 'node:perf_hooks';
import { ChildCrashed, ComputePool } from './compute/pool.js';
import { WorkerHeartbeat } from './heartbeat.js';
import { InferencePool } from './inference/inference-pool.js';
import { Reconciler } from './reconciler.js';
import { JobInputError, Runners } from './runners.js';
import { Slots } from './slots.js';

/** How soon a job held back by its tenant's max_concurrent_jobs is looked at again. */
const CONCURRENCY_RETRY_MS = 500;
/** A worker with free slots asks the scheduler for work at least this often (new work also wakes it over pub/sub). */
const DISPATCH_INTERVAL_MS = 250;

/** setTimeout's longest delay; a later deadline is re-armed on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A job this worker is running: how to stop it, and why it was stopped. */
class RunningJob {
  readonly controller = new AbortController();
  reason: 'cancel' | 'shutdown' | 'deadline' | null = null;
  /** Whether it holds a slot lease in the scheduler (released when the job lets go of its slot). */
  leased = false;
  /** The tenant's max_job_seconds, once the job has started under it. */
  limitSeconds: number | null = null;
  private timer?: NodeJS.Timeout;

  constructor(readonly tenantId: string) {}

  abort(reason: 'cancel' | 'shutdown' | 'deadline'): void {
    this.reason ??= reason;
    this.controller.abort();
  }

  /** Stops the job at `at` (epoch ms), or at once when that has passed (a retry past its deadline). */
  stopAt(at: number): void {
    const left = at - Date.now();
    if (left <= 0) return this.abort('deadline');
    this.timer = setTimeout(() => this.stopAt(at), Math.min(left, MAX_TIMER_MS));
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

const PERMANENT_ML_CODES = new Set([
  'invalid_data',
  'invalid_input',
  'invalid_hyperparameters',
  'architecture_not_allowed',
  'too_many_parameters',
  'invalid_model',
  'invalid_artifact',
]);

/**
 * The worker's job engine: BullMQ consumers of the training, evaluation and inference queues
 * (and their `-gpu` twins when the backend runs on a GPU), each job's lifecycle in PostgreSQL
 * (guarded transitions, events published on the job's channel after they commit), the compute
 * in a pool of child processes, cancellation over pub/sub, the reconciler, and a graceful stop.
 */
@Injectable()
export class JobEngine implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('jobs');
  private readonly jobs: JobRepository;
  private readonly usage: UsageRepository;
  private readonly pool: ComputePool;
  private readonly runners: Runners;
  private readonly slots: Slots;
  private readonly running = new Map<string, RunningJob>();
  private readonly workers: Worker<JobPayload>[] = [];
  private readonly queues: JobQueues;
  private redis!: Redis;
  private sub!: Redis;
  private reconciler!: Reconciler;
  private scheduler!: Scheduler;
  private metrics!: ClusterMetrics;
  private timers: NodeJS.Timeout[] = [];
  private dispatching = false;
  private dispatchAgain = false;
  private stopping = false;
  private paused = false;
  backend: BackendInfo | null = null;
  queueNames: string[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly heartbeat: WorkerHeartbeat,
    inferencePool: InferencePool,
  ) {
    this.jobs = new JobRepository(db);
    this.usage = new UsageRepository(db);
    this.queues = new JobQueues(config);
    this.pool = new ComputePool({
      size: config.workerConcurrency,
      forcedBackend: config.tfBackend,
      cancelKillMs: config.workerCancelKillMs,
      onChild: (pid, backend) => process.stdout.write(`${JSON.stringify({ event: 'worker.child', pid, backend: backend.name })}\n`),
      onError: (m) => this.log.error(m),
    });
    this.runners = new Runners(db, this.pool, inferencePool, config.jobOutputPageSize, config.featureCacheMaxBytes);
    this.slots = new Slots(config.workerConcurrency, (free) => void this.throttle(free));
  }

  /** Starts the compute children first: the backend they load decides which queues this worker takes. */
  async onModuleInit(): Promise<void> {
    this.backend = await this.pool.start();
    const gpu = this.backend.gpu || this.config.workerFakeGpu;
    this.heartbeat.backend = this.backend.name;
    this.heartbeat.gpu = gpu;
    this.queueNames = [...JOB_TYPES.map((t) => queueName(t, null)), ...(gpu ? JOB_TYPES.map((t) => queueName(t, 'gpu')) : [])];
  }

  async onApplicationBootstrap(): Promise<void> {
    this.redis = createRedis(this.config, 'command', 'worker');
    this.sub = createRedis(this.config, 'subscriber', 'worker');
    this.scheduler = new Scheduler(this.config, this.redis, schedulerLeaseMs(this.config), ALL_QUEUES);
    this.metrics = new ClusterMetrics(this.config, this.redis);
    const cancels = jobCancelChannel(this.config);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === cancels) this.running.get(message)?.abort('cancel');
      else void this.dispatch();
    });
    // After a reconnect the subscription may have missed requests: ask the rows.
    this.sub.on('ready', () => void this.checkCancelFlags());
    await this.sub.subscribe(cancels, dispatchChannel(this.config));

    for (const name of this.queueNames) {
      const worker = new Worker<JobPayload>(name, (job, token) => this.process(job, token), {
        connection: {
          url: this.config.redisUrl,
          maxRetriesPerRequest: null,
          retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
        },
        prefix: bullPrefix(this.config),
        name: this.config.instanceId,
        concurrency: this.config.workerConcurrency,
        lockDuration: this.config.workerLockDurationMs,
        stalledInterval: this.config.workerStalledIntervalMs,
        maxStalledCount: this.config.workerMaxStalledCount,
      });
      worker.on('error', (err) => this.log.warn(`queue ${name}: ${err.message}`));
      worker.on('stalled', (jobId) =>
        this.log.warn(`job ${jobId} stalled (its worker stopped renewing the lock); handed back to the queue`),
      );
      this.workers.push(worker);
    }

    this.reconciler = new Reconciler(
      this.config,
      this.jobs,
      this.queues,
      this.redis,
      this.log,
      (e, tenantId) => this.publish(e, tenantId),
      {
        holds: (jobId) => this.scheduler.holds(jobId),
        enqueue: (job) => this.schedule(job),
        remove: (job) => this.scheduler.remove(job),
      },
    );
    this.reconciler.start();
    const leaseMs = schedulerLeaseMs(this.config);
    this.timers.push(
      setInterval(() => void this.dispatch(), DISPATCH_INTERVAL_MS),
      // Leases of running jobs outlive a few missed renewals.
      setInterval(() => void this.renewLeases(), Math.max(100, Math.floor(leaseMs / 4))),
    );
    void this.dispatch();
  }

  /** Puts a queued job (back) in the scheduler, with its tenant's current share. */
  async schedule(job: SchedulableJob): Promise<void> {
    const tenant = await this.db.prisma.tenant.findUnique({ where: { id: job.tenantId }, select: { plan: true, quotas: true } });
    if (!tenant) return;
    await this.scheduler.enqueue(job, schedulingShare(tenant.plan, effectiveQuotas(tenant.plan, tenant.quotas as Record<string, unknown>)));
  }

  /**
   * Asks the scheduler for as many jobs as this worker has free slots, and adds them to BullMQ
   * (each under its own id, so a double add is a no-op). One call at a time; a call asked for
   * meanwhile runs right after.
   */
  async dispatch(): Promise<void> {
    if (this.stopping || !this.scheduler) return;
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        const free = this.slots.available - this.slots.waiting;
        if (free <= 0) break;
        const taken = await this.scheduler.dispatch(this.queueNames, free);
        if (taken.length > 0) await this.toBull(taken);
      } while (this.dispatchAgain && !this.stopping);
    } catch (err) {
      this.log.warn(`dispatch: ${(err as Error).message}`);
    } finally {
      this.dispatching = false;
    }
  }

  /** Dispatched jobs go to BullMQ; one that stopped being queued meanwhile (canceled) gives its lease back. */
  private async toBull(taken: Dispatched[]): Promise<void> {
    const rows = await this.jobs.attemptsOf(taken.map((d) => d.jobId));
    await Promise.all(
      taken.map(async (d) => {
        const row = rows.get(d.jobId);
        if (row?.status !== 'queued') return this.scheduler.release(d.tenantId, d.jobId);
        const [type, accelerator] = d.queue.split('-') as [JobType, string | undefined];
        await this.queues.enqueue({
          id: d.jobId,
          tenantId: d.tenantId,
          type,
          accelerator: accelerator ?? null,
          maxAttempts: row.maxAttempts,
        });
      }),
    );
  }

  private async renewLeases(): Promise<void> {
    const held = [...this.running].filter(([, r]) => r.leased).map(([jobId, r]) => ({ tenantId: r.tenantId, jobId }));
    await this.scheduler.renew(held).catch((err: Error) => this.log.warn(`lease renewal: ${err.message}`));
  }

  /** Current jobs, for the heartbeat and the ready line. */
  currentJobs(): string[] {
    return [...this.running.keys()];
  }

  pids(): number[] {
    return this.pool.pids();
  }

  /**
   * SIGTERM: take no new jobs, give running ones WORKER_SHUTDOWN_DEADLINE_MS to finish, then stop
   * them and hand them back (row → queued, BullMQ → wait) so another worker runs them.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.reconciler?.stop();
    for (const t of this.timers) clearInterval(t);
    const closing = Promise.all(this.workers.map((w) => w.close().catch((err: Error) => this.log.warn(`close: ${err.message}`))));
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      closing.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.config.workerShutdownDeadlineMs))),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      this.log.warn(`shutdown deadline passed; handing back ${this.running.size} job(s)`);
      for (const r of this.running.values()) r.abort('shutdown');
      await closing;
    }
    await this.pool.close();
    await this.queues.close();
    await this.sub?.quit().catch(() => this.sub.disconnect());
    await this.redis?.quit().catch(() => this.redis.disconnect());
  }

  // ---- one job -------------------------------------------------------------------------------

  private async process(bull: BullJob<JobPayload>, token?: string): Promise<unknown> {
    const release = await this.slots.acquire();
    const jobId = bull.data.jobId;
    try {
      if (this.stopping) return await this.handBack(bull, token, null);
      const run = new RunningJob(bull.data.tenantId);
      this.running.set(jobId, run);
      this.heartbeat.currentJobs.add(jobId);
      try {
        return await this.execute(bull, token, run);
      } finally {
        run.dispose();
        this.running.delete(jobId);
        this.heartbeat.currentJobs.delete(jobId);
        if (run.leased)
          await this.scheduler.release(run.tenantId, jobId).catch((err: Error) => this.log.warn(`release of ${jobId}: ${err.message}`));
      }
    } finally {
      release();
      void this.dispatch();
    }
  }

  /** Holds the job back for a moment without spending an attempt: its tenant runs max_concurrent_jobs already. */
  private async atConcurrencyLimit(bull: BullJob<JobPayload>, token: string | undefined): Promise<never> {
    await bull.moveToDelayed(Date.now() + CONCURRENCY_RETRY_MS, token);
    throw new DelayedError();
  }

  private async execute(bull: BullJob<JobPayload>, token: string | undefined, run: RunningJob): Promise<unknown> {
    const jobId = bull.data.jobId;
    const current = await this.jobs.byId(jobId);
    // A job that ended meanwhile gives back the lease its dispatch took.
    run.leased = true;
    if (!current || (current.status !== 'queued' && current.status !== 'running')) return { skipped: current?.status ?? 'missing' };
    // The slot lease: kept if the dispatch took it, taken if the tenant is under its cap (a retry, a
    // job handed back), kept in any case by a job its row says is running (handed back by a stall).
    run.leased = await this.scheduler.claim(current.tenantId, jobId, current.status === 'running');
    if (!run.leased) return this.atConcurrencyLimit(bull, token);
    if (current.cancelRequested) {
      await this.finishCanceled(current, ['queued', 'running'], 0, 'canceled before it started');
      return { status: 'canceled' };
    }
    const started = await this.jobs.start(jobId, this.config.instanceId, this.backend!.name);
    if (started === 'at_concurrency_limit') {
      // PostgreSQL's count is the last word (Redis may have lost its leases): give the lease back and wait.
      await this.scheduler.release(current.tenantId, jobId);
      run.leased = false;
      return this.atConcurrencyLimit(bull, token);
    }
    if (!started) return { skipped: 'moved' };
    this.publish(started.event, started.job.tenantId);
    const job = started.job;
    if (job.cancelRequested) run.abort('cancel');
    // max_job_seconds counts from the first start, so a crash and a retry elsewhere do not reset it.
    run.limitSeconds = started.quotas.max_job_seconds;
    run.stopAt(job.startedAt!.getTime() + run.limitSeconds * 1000);

    const t0 = performance.now();
    let progress: Promise<void> = Promise.resolve();
    let lastProgress: Record<string, unknown> = {};
    try {
      const outcome = await this.runners.run(job, {
        signal: run.controller.signal,
        // Progress rows and events are written one after the other, in epoch order.
        onEpoch: (p) => {
          lastProgress = { epoch: p.epoch, epochs: p.epochs, eta_seconds: 0 };
          progress = progress.then(() => this.recordProgress(job, p, run));
        },
      });
      await progress;
      const seconds = (performance.now() - t0) / 1000;
      const done = await this.jobs.transition(
        jobId,
        ['running'],
        {
          status: 'succeeded',
          version: outcome.version,
          result: outcome.result as object,
          computeSeconds: seconds,
          finishedAt: new Date(),
          progress: { ...lastProgress, percent: 100 } as object,
        },
        { type: 'job.succeeded', data: outcome.result as object },
        outcome.pages ? (tx) => this.jobs.writeOutputs(tx, jobId, outcome.pages as object[]) : undefined,
      );
      this.publish(done?.event ?? null, job.tenantId);
      this.observe(done?.job);
      await this.meter(job, seconds);
      return { status: 'succeeded', version: outcome.version };
    } catch (err) {
      await progress.catch(() => undefined);
      return this.failed(bull, token, job, run, err, (performance.now() - t0) / 1000);
    }
  }

  private async failed(
    bull: BullJob<JobPayload>,
    token: string | undefined,
    job: Job,
    run: RunningJob,
    err: unknown,
    seconds: number,
  ): Promise<unknown> {
    if (run.reason === 'deadline') {
      const error = {
        code: 'max_job_seconds',
        message: `The job ran past its max_job_seconds of ${run.limitSeconds} s (counted from its first start, ${job.startedAt!.toISOString()}) and was stopped`,
      };
      this.log.log(`job ${job.id} stopped: ${error.message}`);
      await this.finishFailed(job, error, seconds);
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    }
    const canceled = isMlError(err) && err.code === 'canceled';
    if (canceled && run.reason === 'shutdown') return this.handBack(bull, token, job);
    if (canceled || run.reason === 'cancel') {
      await this.finishCanceled(job, ['running'], seconds, 'canceled on request');
      await this.meter(job, seconds);
      return { status: 'canceled' };
    }
    const permanent = this.permanentError(err);
    if (permanent) {
      this.log.log(`job ${job.id} failed: ${permanent.code}: ${permanent.message}`);
      await this.finishFailed(job, permanent, seconds);
      throw new UnrecoverableError(`${permanent.code}: ${permanent.message}`);
    }
    const error =
      err instanceof ChildCrashed
        ? { code: 'worker_crashed', message: err.message }
        : { code: 'internal_error', message: 'The job hit an internal error; see the worker logs' };
    this.log.warn(`job ${job.id} attempt ${job.attempts} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (job.attempts >= job.maxAttempts) {
      await this.finishFailed(job, { code: error.code, message: `${error.message} (after ${job.attempts} attempts)` }, seconds);
      throw new UnrecoverableError(error.message);
    }
    const next = nextBackoffMs(bull);
    const r = await this.jobs.transition(
      job.id,
      ['running'],
      { status: 'queued', computeSeconds: { increment: seconds } },
      { type: 'job.retrying', data: { attempt: job.attempts, error, next_attempt_in_ms: next } },
    );
    this.publish(r?.event ?? null, job.tenantId);
    await this.meter(job, seconds);
    // BullMQ retries it after the backoff.
    throw err instanceof Error ? err : new Error(String(err));
  }

  /** Bad input: no retry can help. */
  private permanentError(err: unknown): { code: string; message: string } | null {
    if (err instanceof JobInputError) return { code: err.code, message: err.message };
    if (isMlError(err) && PERMANENT_ML_CODES.has(err.code)) return { code: err.code, message: err.message };
    return null;
  }

  /** Gives the job back to the queue without spending an attempt (shutdown, or a slot freed while stopping). */
  private async handBack(bull: BullJob<JobPayload>, token: string | undefined, job: Job | null): Promise<never> {
    if (job) {
      const error = { code: 'worker_shutdown', message: 'The worker shut down; the job goes back to the queue' };
      const r = await this.jobs.transition(
        job.id,
        ['running'],
        { status: 'queued', attempts: { decrement: 1 } },
        { type: 'job.retrying', data: { attempt: job.attempts, error, next_attempt_in_ms: 0 } },
      );
      this.publish(r?.event ?? null, job.tenantId);
    }
    await bull.moveToWait(token);
    throw new WaitingError();
  }

  private async finishCanceled(job: Job, from: Array<'queued' | 'running'>, seconds: number, reason: string): Promise<void> {
    const r = await this.jobs.transition(
      job.id,
      from,
      { status: 'canceled', finishedAt: new Date(), computeSeconds: { increment: seconds } },
      { type: 'job.canceled', data: { reason } },
    );
    this.publish(r?.event ?? null, job.tenantId);
    this.observe(r?.job);
  }

  private async finishFailed(job: Job, error: { code: string; message: string }, seconds: number): Promise<void> {
    const r = await this.jobs.transition(
      job.id,
      ['running'],
      { status: 'failed', error, finishedAt: new Date(), computeSeconds: { increment: seconds } },
      { type: 'job.failed', data: { error, attempt: job.attempts } },
    );
    this.publish(r?.event ?? null, job.tenantId);
    this.observe(r?.job);
    await this.meter(job, seconds);
  }

  private async recordProgress(job: Job, p: EpochProgress, run: RunningJob): Promise<void> {
    const percent = Math.round((1000 * p.epoch) / p.epochs) / 10;
    try {
      const r = await this.jobs.progress(
        job.id,
        { percent, epoch: p.epoch, epochs: p.epochs, eta_seconds: p.eta_seconds },
        { epoch: p.epoch, epochs: p.epochs, loss: p.loss, val_loss: p.val_loss, ...p.metrics, eta_seconds: p.eta_seconds },
      );
      this.publish(r?.event ?? null);
      // The flag is the fallback for a cancellation whose pub/sub message was missed.
      if (r?.job.cancelRequested) run.abort('cancel');
    } catch (err) {
      this.log.warn(`progress of ${job.id}: ${(err as Error).message}`);
    }
  }

  private async checkCancelFlags(): Promise<void> {
    for (const [jobId, run] of this.running) {
      const job = await this.jobs.byId(jobId).catch(() => null);
      if (job?.cancelRequested) run.abort('cancel');
    }
  }

  /**
   * Every event, once committed, goes to the job's channel (streams and `Prefer: wait` listen
   * there). A change of state also changes the tenant's usage (running and queued jobs, compute,
   * storage): the API instances drop their cached snapshot of it.
   */
  private publish(event: JobEvent | null, tenantId?: string): void {
    if (!event) return;
    const warn = (err: Error) => this.log.warn(`publish ${event.type} of ${event.jobId}: ${err.message}`);
    this.redis.publish(jobEventsChannel(this.config, event.jobId), JSON.stringify(eventView(event))).catch(warn);
    if (tenantId && event.type !== 'job.progress')
      this.redis.publish(invalidationChannel(this.config), JSON.stringify({ usageOf: tenantId })).catch(warn);
  }

  /** A job that ended: its wait and run times go to the cluster-wide histograms of GET /metrics. */
  private observe(job: Job | undefined): void {
    if (!job?.finishedAt) return;
    const started = job.startedAt ?? job.finishedAt;
    const wait = (started.getTime() - job.createdAt.getTime()) / 1000;
    const run = (job.finishedAt.getTime() - started.getTime()) / 1000;
    this.metrics.observeJob(job.type, job.status, wait, run).catch((err: Error) => this.log.warn(`metrics of ${job.id}: ${err.message}`));
  }

  /** Compute seconds are metered per UTC day, rounded up to whole seconds (the job row keeps the exact figure). */
  private async meter(job: Job, seconds: number): Promise<void> {
    if (seconds <= 0) return;
    await this.usage
      .add([{ tenantId: job.tenantId, metric: 'compute_seconds', day: new Date().toISOString().slice(0, 10), value: Math.ceil(seconds) }])
      .catch((err: Error) => this.log.warn(`usage of ${job.id}: ${err.message}`));
  }

  /** A worker whose slots are all busy stops fetching, so that idle workers take the next jobs. */
  private async throttle(free: number): Promise<void> {
    if (this.stopping) return;
    if (free === 0 && !this.paused) {
      this.paused = true;
      await Promise.all(this.workers.map((w) => w.pause(true).catch(() => undefined)));
    } else if (free > 0 && this.paused) {
      this.paused = false;
      for (const w of this.workers) w.resume();
    }
  }
}

/** The delay BullMQ will wait before the next attempt (the queue's backoff option), for `job.retrying`. */
function nextBackoffMs(bull: BullJob<JobPayload>): number {
  const b = bull.opts.backoff;
  if (b === undefined) return 0;
  if (typeof b === 'number') return b;
  const delay = b.delay ?? 0;
  return b.type === 'exponential' ? Math.round(2 ** bull.attemptsMade * delay) : delay;
}
