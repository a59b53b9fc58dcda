import type { AppConfig } from '@app/config';
import { Queue } from 'bullmq';
import { bullPrefix, type JobPayload, type JobType, queueName } from './jobs.js';
import { bullConnection } from './redis.js';

export interface EnqueueableJob {
  id: string;
  tenantId: string;
  type: JobType;
  accelerator: string | null;
  maxAttempts: number;
}

/** Kept after the fact for inspection; the job row in PostgreSQL is the record. */
const KEEP_COMPLETED_S = 3_600;
const KEEP_FAILED_S = 7 * 24 * 3_600;

/**
 * The producer side of the job queues. Adding fails fast while Redis is down (no offline queue):
 * the job row is already committed, and the workers' reconciler enqueues it when Redis returns.
 */
export class JobQueues {
  private readonly queues = new Map<string, Queue<JobPayload>>();

  constructor(private readonly config: Pick<AppConfig, 'redisUrl' | 'redisPrefix'>) {}

  queue(name: string): Queue<JobPayload> {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue<JobPayload>(name, {
        // Fails fast while Redis is down; `call` drops a failed Queue so the next call gets a fresh one.
        connection: bullConnection(this.config, 'command'),
        prefix: bullPrefix(this.config, name),
        skipWaitingForReady: true,
      });
      // Errors surface on the calls that hit them; the event would only crash the process.
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  /** Adds the job under its own id: adding an id the queue holds already is a no-op. */
  async enqueue(job: EnqueueableJob): Promise<void> {
    await this.call(queueName(job.type, job.accelerator), (q) =>
      q.add(
        job.type,
        { jobId: job.id, tenantId: job.tenantId },
        {
          jobId: job.id,
          attempts: job.maxAttempts,
          backoff: { type: 'exponential', delay: 1_000 },
          removeOnComplete: { age: KEEP_COMPLETED_S },
          removeOnFail: { age: KEEP_FAILED_S },
        },
      ),
    );
  }

  /** Whether the queue holds the job (in any state). */
  async holds(job: Pick<EnqueueableJob, 'id' | 'type' | 'accelerator'>): Promise<boolean> {
    return (await this.call(queueName(job.type, job.accelerator), (q) => q.getJob(job.id))) !== undefined;
  }

  /** Removes a job that has not started; returns whether it was removed. */
  async remove(job: Pick<EnqueueableJob, 'id' | 'type' | 'accelerator'>): Promise<boolean> {
    return (await this.call(queueName(job.type, job.accelerator), (q) => q.remove(job.id))) === 1;
  }

  /** Runs a call on a queue; a Queue whose call failed (Redis down, or its init failed) is replaced on the next call. */
  async call<T>(name: string, fn: (q: Queue<JobPayload>) => Promise<T>): Promise<T> {
    const q = this.queue(name);
    try {
      return await fn(q);
    } catch (err) {
      if (this.queues.get(name) === q) this.queues.delete(name);
      void q.close().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
  }
}
