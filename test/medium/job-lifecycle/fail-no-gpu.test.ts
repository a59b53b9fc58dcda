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
const gpu = { accelerator: 'gpu' };

describe('failNoGpu (reconciler): queued → failed, no GPU worker came', () => {
  it('fails the queued job with no_gpu_worker naming the limit; it never started', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t, gpu);
    await m.lifecycle.failNoGpu(job, 600);
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({
      status: 'failed',
      error: { code: 'no_gpu_worker', message: expect.stringContaining('within 600 s') },
      attempts: 0,
      startedAt: null,
      computeSeconds: 0,
    });
    expect(row.finishedAt).toBeInstanceOf(Date);
  });

  it('writes job.failed as event 2', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t, gpu);
    await m.lifecycle.failNoGpu(job, 600);
    expect(await eventsOf(m.db, job.id)).toMatchObject([
      { seq: 1, type: 'job.queued' },
      { seq: 2, type: 'job.failed', data: { attempt: 0, error: { code: 'no_gpu_worker' } } },
    ]);
  });

  it('takes it out of the queues after it committed, publishes once, meters nothing', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t, gpu);
    await m.lifecycle.failNoGpu(job, 600);
    expect(m.queues.calls).toEqual([{ op: 'unschedule', jobId: job.id, status: 'failed' }]);
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.failed', seq: 2n });
    expect(await computeUsage(m.db, t.id)).toEqual({});
  });

  it('writes job.failed to an enabled endpoint, and no message without one', async () => {
    const hooked = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, hooked.id);
    const plain = await createTenant(m.db);
    await m.lifecycle.failNoGpu(await queuedJob(m.db, hooked, gpu), 600);
    await m.lifecycle.failNoGpu(await queuedJob(m.db, plain, gpu), 600);
    expect(await outboxOf(m.db, hooked.id)).toMatchObject([
      { endpoint_id: endpoint, event_type: 'job.failed', payload: { data: { status: 'failed', error: { code: 'no_gpu_worker' } } } },
    ]);
    expect(await outboxOf(m.db, plain.id)).toEqual([]);
  });

  it('is refused for a job a GPU worker started meanwhile: null, nothing written, still queued in BullMQ', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t, gpu);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.failNoGpu(job, 600))).toBeNull();
  });

  it('is refused a second time: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t, gpu);
    await m.lifecycle.failNoGpu(job, 600);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.failNoGpu(job, 600))).toBeNull();
  });
});
