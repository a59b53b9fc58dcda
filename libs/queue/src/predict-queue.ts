import type { AppConfig } from '@app/config';
import { Queue } from 'bullmq';
import { bullPrefix } from './jobs.js';
import { PREDICT_JOB_OPTIONS, PREDICT_QUEUE, type PredictFailure, type PredictPayload, type PredictReply } from './predict.js';

/** Where a sync prediction stands in BullMQ, for an API instance that may have missed its reply. */
export type PredictState = { reply: PredictReply } | { pending: true } | { lost: true };

/**
 * The producer side of the `predict` queue. Like JobQueues, adding fails fast while Redis is
 * down and a Queue whose call failed is replaced on the next call.
 */
export class PredictQueue {
  private queue: Queue<PredictPayload, PredictReply> | null = null;

  constructor(private readonly config: Pick<AppConfig, 'redisUrl' | 'redisPrefix'>) {}

  /** Adds the request under its job id (adding an id the queue holds is a no-op). */
  async add(payload: PredictPayload): Promise<void> {
    await this.call((q) => q.add(PREDICT_QUEUE, payload, { jobId: payload.jobId, ...PREDICT_JOB_OPTIONS }));
  }

  /**
   * What the queue says of a request: its reply once finished (the worker's return value), or
   * that it is still pending. A job BullMQ failed (stalled too often) is an `internal_error` reply;
   * a job it no longer holds is lost.
   */
  async state(jobId: string): Promise<PredictState> {
    const job = await this.call((q) => q.getJob(jobId));
    if (!job) return { lost: true };
    if (job.finishedOn && job.returnvalue) return { reply: job.returnvalue };
    if (job.finishedOn && job.failedReason) {
      const at = new Date(job.finishedOn).toISOString();
      const reply: PredictFailure = {
        id: jobId,
        ok: false,
        error: { code: 'internal_error', message: 'The prediction failed on the worker; try again' },
        workerId: job.processedBy ?? 'unknown',
        backend: 'unknown',
        attempts: job.attemptsStarted,
        startedAt: new Date(job.processedOn ?? job.finishedOn).toISOString(),
        finishedAt: at,
      };
      return { reply };
    }
    return { pending: true };
  }

  async close(): Promise<void> {
    await this.queue?.close().catch(() => undefined);
  }

  private async call<T>(fn: (q: Queue<PredictPayload, PredictReply>) => Promise<T>): Promise<T> {
    const q = (this.queue ??= this.open());
    try {
      return await fn(q);
    } catch (err) {
      if (this.queue === q) this.queue = null;
      void q.close().catch(() => undefined);
      throw err;
    }
  }

  private open(): Queue<PredictPayload, PredictReply> {
    const q = new Queue<PredictPayload, PredictReply>(PREDICT_QUEUE, {
      // As JobQueues: commands fail within ~0.1 s while Redis is down rather than wait for it.
      connection: { url: this.config.redisUrl, maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000) },
      prefix: bullPrefix(this.config),
      skipWaitingForReady: true,
    });
    q.on('error', () => undefined);
    return q;
  }
}
