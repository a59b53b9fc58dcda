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
const error = { code: 'dataset_not_found', message: 'The dataset is gone' };

describe('fail: running → failed', () => {
  it('ends the job with its error, finished_at and the seconds it ran', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.fail(job, error, 0.75);
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({ status: 'failed', error, computeSeconds: 0.75, attempts: 1, startedAt: job.startedAt, result: null });
    expect(row.finishedAt).toBeInstanceOf(Date);
  });

  it('writes job.failed with the error and the attempt, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.fail(job, error, 1);
    expect(await eventsOf(m.db, job.id)).toMatchObject([
      { seq: 1, type: 'job.queued' },
      { seq: 2, type: 'job.started' },
      { seq: 3, type: 'job.failed', data: { error, attempt: 1 } },
    ]);
  });

  it('meters the seconds, rounded up, for the UTC day', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.fail(await runningJob(m, t), error, 0.2);
    expect(await computeUsage(m.db, t.id)).toEqual({ [utcToday()]: 1 });
  });

  it('meters nothing for an attempt of 0 seconds', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.fail(await runningJob(m, t), error);
    expect(await computeUsage(m.db, t.id)).toEqual({});
  });

  it('publishes job.failed once, after it committed, and calls no queue', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.fail(await runningJob(m, t), error, 1);
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.failed', seq: 3n });
    expect(m.queues.calls).toEqual([]);
  });

  it('is refused a second time: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.fail(job, error, 1);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.fail(job, error, 1))).toBeNull();
  });

  it('is refused for a queued job unless queued is named: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.fail(job, error, 1))).toBeNull();
  });

  it('fails a queued job when queued is named', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await m.lifecycle.fail(job, error, 0, ['queued'])).toMatchObject({ job: { status: 'failed', error, attempts: 0 } });
  });

  it('writes job.failed to an enabled endpoint, and no message without one', async () => {
    const hooked = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, hooked.id, ['job.failed']);
    const plain = await createTenant(m.db);
    await m.lifecycle.fail(await runningJob(m, hooked), error, 1);
    await m.lifecycle.fail(await runningJob(m, plain), error, 1);
    expect(await outboxOf(m.db, hooked.id)).toMatchObject([
      { endpoint_id: endpoint, event_type: 'job.failed', payload: { data: { status: 'failed', error } } },
    ]);
    expect(await outboxOf(m.db, plain.id)).toEqual([]);
  });

  it("writes job.failed to the job's own webhook_url when its webhook_events include completed", async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.fail(await runningJob(m, t, { webhookUrl: 'https://a.example.com/f', webhookEvents: ['completed'] }), error, 1);
    expect(await outboxOf(m.db, t.id)).toMatchObject([{ endpoint_id: null, url: 'https://a.example.com/f', event_type: 'job.failed' }]);
  });
});
