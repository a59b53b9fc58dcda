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
  utcToday,
  withoutWrites,
} from '../support.js';

const m = useMedium();
const error = { code: 'worker_crashed', message: 'The compute child died' };

describe('retry: running → queued, the attempt spent', () => {
  it('puts the job back in queued, keeping its attempts and started_at, adding the seconds', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.retry(job, error, 1.5, 1000);
    expect((await m.lifecycle.read(job.id))!).toMatchObject({
      status: 'queued',
      attempts: 1,
      startedAt: job.startedAt,
      finishedAt: null,
      computeSeconds: 1.5,
    });
  });

  it('writes job.retrying with the attempt, the error and the delay, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.retry(job, error, 1, 1000);
    expect((await eventsOf(m.db, job.id)).at(-1)).toEqual({
      seq: 3,
      type: 'job.retrying',
      data: { attempt: 1, error, next_attempt_in_ms: 1000 },
    });
  });

  it('meters the seconds, rounded up, for the UTC day', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.retry(await runningJob(m, t), error, 1.5, 1000);
    expect(await computeUsage(m.db, t.id)).toEqual({ [utcToday()]: 2 });
  });

  it('keeps started_at when the next attempt starts, and counts it', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.retry(job, error, 1, 1000);
    const again = await m.lifecycle.start(job.id, 'wrk_b', 'cpu');
    expect(again).toMatchObject({ job: { status: 'running', attempts: 2, startedAt: job.startedAt } });
    expect((await eventsOf(m.db, job.id)).map((e) => [e.seq, e.type])).toEqual([
      [1, 'job.queued'],
      [2, 'job.started'],
      [3, 'job.retrying'],
      [4, 'job.started'],
    ]);
  });

  it('publishes job.retrying once, after it committed, and leaves the queueing to BullMQ', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.retry(await runningJob(m, t), error, 1, 1000);
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.retrying', seq: 3n });
    expect(m.queues.calls).toEqual([]);
  });

  it('is refused a second time: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.retry(job, error, 1, 1000);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.retry(job, error, 1, 1000))).toBeNull();
  });

  it('is refused for a queued job that never ran: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.retry(job, error, 1, 1000))).toBeNull();
  });

  it('writes no webhook message (job.retrying is not a webhook event), even with an endpoint', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id, ['job.failed']);
    await m.lifecycle.retry(await runningJob(m, t, { webhookUrl: 'https://a.example.com/x', webhookEvents: ['completed'] }), error, 1, 0);
    expect(await outboxOf(m.db, t.id)).toEqual([]);
  });
});
