import { describe, expect, it } from '@jest/globals';
import {
  addEndpoint,
  computeUsage,
  createTenant,
  eventsOf,
  outboxOf,
  publishedOnce,
  queuedJob,
  runningJob,
  useMedium,
  withoutWrites,
} from '../support.js';

const m = useMedium();

describe('requeueLost (reconciler): running → queued, the worker lost', () => {
  it('puts the job back in queued; the lost attempt stays counted, started_at kept', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.requeueLost(job);
    expect((await m.lifecycle.read(job.id))!).toMatchObject({ status: 'queued', attempts: 1, startedAt: job.startedAt, finishedAt: null });
  });

  it('writes job.retrying with worker_lost and no delay, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.requeueLost(job);
    expect((await eventsOf(m.db, job.id)).at(-1)).toEqual({
      seq: 3,
      type: 'job.retrying',
      data: { attempt: 1, error: { code: 'worker_lost', message: expect.any(String) }, next_attempt_in_ms: 0 },
    });
  });

  it('hands the queued job to the scheduler, once, after it committed', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.requeueLost(job);
    expect(m.queues.calls).toEqual([{ op: 'schedule', jobId: job.id, status: 'queued' }]);
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.retrying', seq: 3n });
  });

  it('meters nothing and writes no webhook message', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id, ['job.failed']);
    await m.lifecycle.requeueLost(await runningJob(m, t));
    expect(await computeUsage(m.db, t.id)).toEqual({});
    expect(await outboxOf(m.db, t.id)).toEqual([]);
  });

  it('is refused a second time: null, nothing written, nothing scheduled', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.requeueLost(job);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.requeueLost(job))).toBeNull();
  });

  it('is refused for a job that ended meanwhile: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.succeed(job, { version: 1, result: {}, seconds: 1, progress: {} });
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.requeueLost(job))).toBeNull();
  });
});

describe('failLost (reconciler): running → failed, the worker lost with no attempts left', () => {
  it('fails the job with worker_lost naming the attempt, finished_at set, nothing metered', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.failLost(job);
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({ status: 'failed', error: { code: 'worker_lost', message: expect.stringContaining('attempt 1') } });
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(await computeUsage(m.db, t.id)).toEqual({});
  });

  it('writes job.failed as the next event and publishes it once, after commit', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.failLost(job);
    expect((await eventsOf(m.db, job.id)).at(-1)).toMatchObject({
      seq: 3,
      type: 'job.failed',
      data: { attempt: 1, error: { code: 'worker_lost' } },
    });
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.failed', seq: 3n });
    expect(m.queues.calls).toEqual([]);
  });

  it('writes job.failed to an enabled endpoint', async () => {
    const t = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, t.id, ['job.failed']);
    await m.lifecycle.failLost(await runningJob(m, t));
    expect(await outboxOf(m.db, t.id)).toMatchObject([{ endpoint_id: endpoint, event_type: 'job.failed' }]);
  });

  it('is refused a second time, or for a queued job: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.failLost(job);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.failLost(job))).toBeNull();
    const queued = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.failLost(queued))).toBeNull();
  });
});
