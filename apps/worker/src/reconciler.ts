import type { AppConfig } from '@app/config';
import { type FileRepository, type JobRepository, WORKER_STALE_MS } from '@app/db';
import type { JobLifecycle } from '@app/jobs';
import { type JobQueues, queueName, redisKey, type Scheduler, type RedisClient } from '@app/queue';
import type { Logger } from '@nestjs/common';

/**
 * Accepted means durable: every few seconds one worker (a Redis lock, SET NX PX) compares the
 * database with the queues and repairs what does not agree:
 * - a `queued` job older than WORKER_RECONCILE_AGE_MS that neither the scheduler nor BullMQ holds
 *   (accepted while Redis was down, or lost with Redis's memory) goes back to the scheduler; one
 *   BullMQ holds as completed or failed (its attempt ended without the row saying so) too;
 * - a `running` job untouched for three lock durations whose queue entry is gone, completed or
 *   failed (its worker died in a way BullMQ could not hand back, e.g. the stall limit) goes back
 *   to `queued` and is enqueued, or is failed with `worker_lost` once its attempts are spent;
 * - a gpu job queued for JOB_GPU_WAIT_TIMEOUT_SECONDS while no GPU worker is online is failed
 *   with `no_gpu_worker` and leaves the scheduler (else it would wait forever);
 * - output files past their `expires_at` are deleted, their storage given back (FileRepository.sweep).
 */
export class Reconciler {
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly config: AppConfig,
    private readonly jobs: JobRepository,
    private readonly lifecycle: JobLifecycle,
    private readonly queues: JobQueues,
    private readonly redis: RedisClient,
    private readonly log: Logger,
    private readonly scheduler: Pick<Scheduler, 'holdsMany'>,
    private readonly files: FileRepository,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.config.workerReconcileIntervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pass, if this worker wins the lock. Returns how many jobs it (re-)enqueued, or null without the lock. */
  async tick(): Promise<number | null> {
    if (this.busy) return null;
    this.busy = true;
    try {
      const won = await this.redis.set(
        redisKey(this.config, 'reconciler', 'lock'),
        this.config.instanceId,
        'PX',
        this.config.workerReconcileIntervalMs,
        'NX',
      );
      if (won !== 'OK') return null;
      await this.expireGpuWaits();
      await this.tidyFiles();
      return (await this.queued()) + (await this.running());
    } catch (err) {
      this.log.warn(`reconciler: ${(err as Error).message}`);
      return null;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Output files: the expired ones deleted (their storage given back); a file left `writing` by a
   * job that ended without finishing it (its worker lost with no attempts left) finished with the
   * rows it holds.
   */
  private async tidyFiles(): Promise<void> {
    const swept = await this.files.sweep();
    if (swept > 0) this.log.log(`reconciler: ${swept} expired files deleted`);
    const finished = await this.files.finishOrphans(this.config.fileRetentionSeconds);
    if (finished > 0) this.log.warn(`reconciler: ${finished} output files of jobs that ended without them finished`);
  }

  private async expireGpuWaits(): Promise<void> {
    const limit = this.config.jobGpuWaitTimeoutSeconds;
    const waiting = await this.jobs.queuedForGpuBefore(limit * 1000);
    if (waiting.length === 0 || (await this.jobs.gpuWorkerOnline(WORKER_STALE_MS))) return;
    for (const job of waiting) {
      if (await this.lifecycle.failNoGpu(job, limit)) this.log.warn(`reconciler: ${job.id} failed: no GPU worker within ${limit} s`);
    }
  }

  private async queued(): Promise<number> {
    let n = 0;
    const queued = await this.jobs.queuedBefore(this.config.workerReconcileAgeMs);
    // A backlog is mostly jobs the scheduler holds: one round trip says which, not one per job.
    const held = await this.scheduler.holdsMany(queued.map((j) => j.id));
    for (const job of queued) {
      if (held.has(job.id)) continue;
      const entry = await this.queues.call(queueName(job.type, job.accelerator), (q) => q.getJob(job.id));
      if (entry) {
        const state = await entry.getState();
        if (state !== 'completed' && state !== 'failed') continue;
        await entry.remove().catch(() => undefined);
      }
      await this.lifecycle.reschedule(job);
      this.log.log(`reconciler: enqueued ${job.id} (${entry ? 'its queue entry had ended' : 'no queue held it'})`);
      n++;
    }
    return n;
  }

  private async running(): Promise<number> {
    let n = 0;
    for (const job of await this.jobs.runningBefore(Math.max(3 * this.config.workerLockDurationMs, this.config.workerReconcileAgeMs))) {
      const held = await this.queues.call(queueName(job.type, job.accelerator), (q) => q.getJob(job.id));
      const state = held ? await held.getState() : 'missing';
      if (state !== 'missing' && state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
      if (job.attempts >= job.maxAttempts) {
        await this.lifecycle.failLost(job);
        continue;
      }
      if (held) await held.remove().catch(() => undefined);
      if (await this.lifecycle.requeueLost(job)) {
        this.log.warn(`reconciler: ${job.id} was running on a lost worker; enqueued again`);
        n++;
      }
    }
    return n;
  }
}
