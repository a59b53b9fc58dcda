import { Backoffs, type MinimalJob } from 'bullmq';

/**
 * How long BullMQ will wait before the next attempt of a job whose processor is failing now (the
 * `next_attempt_in_ms` of `job.retrying`), computed by BullMQ's own backoff code with the attempt
 * number BullMQ passes it: `attemptsMade` counts the attempts that ended (BullMQ increments it only
 * after moving the failed job), so the failing one is `attemptsMade + 1`. No backoff: 0 (retried at
 * once). Built-in strategies only (no queue here sets a custom one; they read neither the error nor
 * the job); with `jitter`, BullMQ makes its own random draw, and this is another from the same range.
 */
export function retryDelayMs(job: MinimalJob): number {
  const backoff = Backoffs.normalize(job.opts.backoff ?? 0);
  const delay = backoff && Backoffs.calculate(backoff, job.attemptsMade + 1, new Error('attempt failed'), job);
  return typeof delay === 'number' && delay > 0 ? delay : 0;
}
