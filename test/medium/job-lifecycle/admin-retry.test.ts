import { describe, expect, it } from '@jest/globals';
import type { Job } from '@app/db';
import {
  addEndpoint,
  computeUsage,
  createTenant,
  eventsOf,
  type Medium,
  outboxOf,
  publishedOnce,
  queuedJob,
  runningJob,
  useMedium,
  utcToday,
  withoutWrites,
} from '../support.js';

const m = useMedium();
const error = { code: 'training_diverged', message: 'NaN loss' };

/** A job that failed for good on its first attempt, after 1.5 s, with the records reset. */
async function failedJob(medium: Medium, tenant: { id: string; modelId: string }): Promise<Job> {
  const job = await runningJob(medium, tenant);
  const failed = await medium.lifecycle.fail(job, error, 1.5);
  medium.reset();
  return failed!.job;
}

describe('adminRetry: failed → queued, one more attempt', () => {
  it('queues the job again with error, started_at and finished_at cleared, one more attempt allowed', async () => {
    const t = await createTenant(m.db);
    const job = await failedJob(m, t);
    await m.lifecycle.adminRetry(job);
    expect((await m.lifecycle.read(job.id))!).toMatchObject({
      status: 'queued',
      error: null,
      startedAt: null,
      finishedAt: null,
      cancelRequested: false,
      attempts: 1,
      maxAttempts: 4,
      computeSeconds: 1.5,
    });
  });

  it('clears a cancel request the failed job carried', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.cancel(t.id, job.id);
    const failed = await m.lifecycle.fail(job, error, 1);
    expect(failed!.job.cancelRequested).toBe(true);
    expect(await m.lifecycle.adminRetry(failed!.job)).toMatchObject({ job: { status: 'queued', cancelRequested: false } });
  });

  it('writes job.retrying by admin, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await failedJob(m, t);
    await m.lifecycle.adminRetry(job);
    expect((await eventsOf(m.db, job.id)).map((e) => [e.seq, e.type, e.data])).toEqual([
      [1, 'job.queued', {}],
      [2, 'job.started', expect.anything()],
      [3, 'job.failed', expect.anything()],
      [4, 'job.retrying', { attempt: 1, by: 'admin', next_attempt_in_ms: 0 }],
    ]);
  });

  it('removes its old queue entry, then schedules it, after it committed', async () => {
    const t = await createTenant(m.db);
    const job = await failedJob(m, t);
    await m.lifecycle.adminRetry(job);
    expect(m.queues.calls).toEqual([
      { op: 'unschedule', jobId: job.id, status: 'queued' },
      { op: 'schedule', jobId: job.id, status: 'queued' },
    ]);
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.retrying', seq: 4n });
  });

  it('starts it again as a new attempt with a new started_at', async () => {
    const t = await createTenant(m.db);
    const job = await failedJob(m, t);
    await m.lifecycle.adminRetry(job);
    const again = await m.lifecycle.start(job.id, 'wrk_b', 'cpu');
    if (!again || typeof again === 'string') throw new Error('not started');
    expect(again.job).toMatchObject({ status: 'running', attempts: 2, maxAttempts: 4 });
    expect(again.job.startedAt!.getTime()).toBeGreaterThanOrEqual(job.finishedAt!.getTime());
  });

  it('meters nothing more and writes no webhook message', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id, ['job.failed', 'job.started']);
    const job = await failedJob(m, t);
    const before = await outboxOf(m.db, t.id);
    await m.lifecycle.adminRetry(job);
    expect(await computeUsage(m.db, t.id)).toEqual({ [utcToday()]: 2 });
    expect(await outboxOf(m.db, t.id)).toEqual(before);
  });

  it('is refused a second time: null, nothing written, nothing scheduled', async () => {
    const t = await createTenant(m.db);
    const job = await failedJob(m, t);
    await m.lifecycle.adminRetry(job);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.adminRetry(job))).toBeNull();
  });

  it.each(['queued', 'running', 'succeeded'])('is refused for a %s job: null, nothing written', async (status) => {
    const t = await createTenant(m.db);
    let job = status === 'queued' ? await queuedJob(m.db, t) : await runningJob(m, t);
    if (status === 'succeeded') job = (await m.lifecycle.succeed(job, { version: 1, result: {}, seconds: 1, progress: {} }))!.job;
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.adminRetry(job))).toBeNull();
  });
});
