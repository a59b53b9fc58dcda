import { ACTIVE, isActive } from '@app/common';
import type { AppConfig } from '@app/config';
import { type Job, StorageFull } from '@app/db';
import type { JobLifecycle } from '@app/jobs';
import { type EpochProgress, isMlError } from '@app/ml';
import { type JobPayload, type JobType, retryDelayMs, type Scheduler } from '@app/queue';
import type { Logger } from '@nestjs/common';
import { type Job as BullJob, DelayedError, UnrecoverableError, WaitingError } from 'bullmq';
import { performance } from 'node:perf_hooks';
import { ChildCrashed } from '../compute/pool.js';
import { JobInputError, JobMovedOn, type Outcome, type RunContext } from './job-reader.js';
import { RunningJob } from './running-job.js';

/** How soon a job held back by its tenant's max_concurrent_jobs is looked at again. */
const CONCURRENCY_RETRY_MS = 500;

const PERMANENT_ML_CODES = new Set([
  'invalid_data',
  'invalid_input',
  'invalid_hyperparameters',
  'architecture_not_allowed',
  'too_many_parameters',
  'invalid_model',
  'invalid_artifact',
]);

/** The work of one queue's jobs. */
export interface Processor {
  run(job: Job, ctx: RunContext): Promise<Outcome>;
}

/**
 * One BullMQ job, start to end, on this worker: its slot lease, the start, the processor of its
 * queue, then succeed, retry, fail, cancel or hand back, each one call to the lifecycle. The
 * running jobs it holds are what cancels, the deadline and a shutdown stop.
 */
export class JobRunner {
  readonly running = new Map<string, RunningJob>();

  constructor(
    private readonly config: AppConfig,
    private readonly lifecycle: JobLifecycle,
    private readonly scheduler: Scheduler,
    private readonly processors: Record<JobType, Processor>,
    private readonly backend: () => string,
    private readonly log: Logger,
  ) {}

  /** Runs the job; `stopping` hands it straight back. The caller holds a slot for it. */
  async process(bull: BullJob<JobPayload>, token: string | undefined, stopping: boolean): Promise<unknown> {
    const jobId = bull.data.jobId;
    if (stopping) return this.handBack(bull, token, null);
    const run = new RunningJob(bull.data.tenantId);
    this.running.set(jobId, run);
    try {
      return await this.execute(bull, token, run);
    } finally {
      run.dispose();
      this.running.delete(jobId);
      if (run.leased)
        await this.scheduler.release(run.tenantId, jobId).catch((err: Error) => this.log.warn(`release of ${jobId}: ${err.message}`));
    }
  }

  /** Holds the job back for a moment without spending an attempt: its tenant runs max_concurrent_jobs already. */
  private async atConcurrencyLimit(bull: BullJob<JobPayload>, token: string | undefined): Promise<never> {
    await bull.moveToDelayed(Date.now() + CONCURRENCY_RETRY_MS, token);
    throw new DelayedError();
  }

  private async execute(bull: BullJob<JobPayload>, token: string | undefined, run: RunningJob): Promise<unknown> {
    const { jobId, tenantId } = bull.data;
    // The slot lease: kept if the dispatch took it, taken if the tenant is under its cap (a retry, a
    // job handed back), kept in any case by a job its row says is running (handed back by a stall).
    run.leased = await this.scheduler.claim(tenantId, jobId, false);
    if (!run.leased) {
      const current = await this.lifecycle.read(jobId);
      if (!current || !isActive(current.status)) return { skipped: current?.status ?? 'missing' };
      if (current.status !== 'running') return this.atConcurrencyLimit(bull, token);
      run.leased = await this.scheduler.claim(tenantId, jobId, true);
    }
    const started = await this.lifecycle.start(jobId, this.config.instanceId, this.backend());
    if (started === 'at_concurrency_limit') {
      // PostgreSQL's count is the last word (Redis may have lost its leases): give the lease back and wait.
      await this.scheduler.release(tenantId, jobId);
      run.leased = false;
      return this.atConcurrencyLimit(bull, token);
    }
    if (started === 'cancel_requested') {
      const current = await this.lifecycle.read(jobId);
      if (current) await this.lifecycle.canceled(current, ACTIVE, 0, 'canceled before it started');
      return { status: 'canceled' };
    }
    // A job that ended meanwhile (or never was) gives back the lease its dispatch took.
    if (!started) return { skipped: 'not_active' };
    const job = started.job;
    if (job.cancelRequested) run.abort('cancel');
    // max_job_seconds counts from the first start, so a crash and a retry elsewhere do not reset it.
    run.limitSeconds = started.quotas.max_job_seconds;
    run.stopAt(job.startedAt!.getTime() + run.limitSeconds * 1000);

    const t0 = performance.now();
    let progress: Promise<void> = Promise.resolve();
    let lastProgress: Record<string, unknown> = {};
    const ctx: RunContext = {
      signal: run.controller.signal,
      quotas: started.quotas,
      // Progress rows and events are written one after the other, in epoch order.
      onEpoch: (p) => {
        lastProgress = { epoch: p.epoch, epochs: p.epochs, eta_seconds: 0 };
        progress = progress.then(() => this.recordProgress(job, p, run));
      },
    };
    try {
      const outcome = await this.processors[job.type].run(job, ctx);
      await progress;
      const seconds = (performance.now() - t0) / 1000;
      await this.lifecycle.succeed(job, { ...outcome, seconds, progress: { ...lastProgress, ...outcome.progress, percent: 100 } });
      return { status: 'succeeded', version: outcome.version };
    } catch (err) {
      await progress.catch(() => undefined);
      return this.failed(bull, token, job, run, ctx, err, (performance.now() - t0) / 1000);
    }
  }

  /** What a job that ends otherwise than succeeded keeps (ctx.partial); a failure to keep it is logged, never the job's end. */
  private async partial(job: Job, ctx: RunContext): Promise<Record<string, unknown> | null> {
    if (!ctx.partial) return null;
    try {
      return await ctx.partial();
    } catch (err) {
      this.log.warn(`job ${job.id}: keeping its partial output failed: ${(err as Error).message}`);
      return null;
    }
  }

  /** Why the attempt ended, and what follows: the deadline, a cancel, a hand-back, bad input, or a retry while attempts last. */
  private async failed(
    bull: BullJob<JobPayload>,
    token: string | undefined,
    job: Job,
    run: RunningJob,
    ctx: RunContext,
    err: unknown,
    seconds: number,
  ): Promise<unknown> {
    // Another attempt (or the reconciler) owns the job now: nothing of this one is written.
    if (err instanceof JobMovedOn) {
      this.log.warn(`job ${job.id}: ${err.message}; this attempt stops`);
      return { skipped: 'moved_on' };
    }
    if (run.reason === 'deadline') {
      const error = {
        code: 'max_job_seconds',
        message: `The job ran past its max_job_seconds of ${run.limitSeconds} s (counted from its first start, ${job.startedAt!.toISOString()}) and was stopped`,
      };
      this.log.log(`job ${job.id} stopped: ${error.message}`);
      await this.lifecycle.fail(job, error, seconds, ['running'], await this.partial(job, ctx));
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    }
    const canceled = isMlError(err) && err.code === 'canceled';
    if (canceled && run.reason === 'shutdown') return this.handBack(bull, token, job);
    if (canceled || run.reason === 'cancel') {
      await this.lifecycle.canceled(job, ['running'], seconds, 'canceled on request', await this.partial(job, ctx));
      return { status: 'canceled' };
    }
    const permanent = permanentError(err);
    if (permanent) {
      this.log.log(`job ${job.id} failed: ${permanent.code}: ${permanent.message}`);
      await this.lifecycle.fail(job, permanent, seconds, ['running'], await this.partial(job, ctx));
      throw new UnrecoverableError(`${permanent.code}: ${permanent.message}`);
    }
    const error =
      err instanceof ChildCrashed
        ? { code: 'worker_crashed', message: err.message }
        : { code: 'internal_error', message: 'The job hit an internal error; see the worker logs' };
    this.log.warn(`job ${job.id} attempt ${job.attempts} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (job.attempts >= job.maxAttempts) {
      const message = `${error.message} (after ${job.attempts} attempts)`;
      await this.lifecycle.fail(job, { code: error.code, message }, seconds, ['running'], await this.partial(job, ctx));
      throw new UnrecoverableError(error.message);
    }
    await this.lifecycle.retry(job, error, seconds, retryDelayMs(bull));
    // BullMQ retries it after the backoff.
    throw err instanceof Error ? err : new Error(String(err));
  }

  /** Gives the job back to the queue without spending an attempt (shutdown, or a slot freed while stopping). */
  private async handBack(bull: BullJob<JobPayload>, token: string | undefined, job: Job | null): Promise<never> {
    if (job) await this.lifecycle.handBack(job);
    await bull.moveToWait(token);
    throw new WaitingError();
  }

  private async recordProgress(job: Job, p: EpochProgress, run: RunningJob): Promise<void> {
    const percent = Math.round((1000 * p.epoch) / p.epochs) / 10;
    try {
      const r = await this.lifecycle.progress(
        job.id,
        { percent, epoch: p.epoch, epochs: p.epochs, eta_seconds: p.eta_seconds },
        { epoch: p.epoch, epochs: p.epochs, loss: p.loss, val_loss: p.val_loss, ...p.metrics, eta_seconds: p.eta_seconds },
      );
      // The flag is the fallback for a cancellation whose pub/sub message was missed.
      if (r?.job.cancelRequested) run.abort('cancel');
    } catch (err) {
      this.log.warn(`progress of ${job.id}: ${(err as Error).message}`);
    }
  }

  /** After a reconnect the cancel subscription may have missed requests: ask the rows. */
  async checkCancelFlags(): Promise<void> {
    for (const [jobId, run] of this.running) {
      const job = await this.lifecycle.read(jobId).catch(() => null);
      if (job?.cancelRequested) run.abort('cancel');
    }
  }
}

/** Bad input: no retry can help. */
function permanentError(err: unknown): { code: string; message: string } | null {
  if (err instanceof JobInputError || err instanceof StorageFull) return { code: err.code, message: err.message };
  if (isMlError(err) && PERMANENT_ML_CODES.has(err.code)) return { code: err.code, message: err.message };
  return null;
}
