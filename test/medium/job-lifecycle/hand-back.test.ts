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

describe('handBack: running → queued, the attempt given back', () => {
  it('puts the job back in queued without spending the attempt', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.handBack(job);
    expect((await m.lifecycle.read(job.id))!).toMatchObject({ status: 'queued', attempts: 0, computeSeconds: 0, finishedAt: null });
  });

  it('writes job.retrying with worker_shutdown and no delay, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.handBack(job);
    expect((await eventsOf(m.db, job.id)).at(-1)).toEqual({
      seq: 3,
      type: 'job.retrying',
      data: { attempt: 1, error: { code: 'worker_shutdown', message: expect.any(String) }, next_attempt_in_ms: 0 },
    });
  });

  it('lets the next worker start it as attempt 1 again', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.handBack(job);
    expect(await m.lifecycle.start(job.id, 'wrk_b', 'cpu')).toMatchObject({ job: { attempts: 1, workerId: 'wrk_b' } });
  });

  it('meters nothing, publishes once after commit and calls no queue', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.handBack(await runningJob(m, t));
    expect(await computeUsage(m.db, t.id)).toEqual({});
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.retrying', seq: 3n });
    expect(m.queues.calls).toEqual([]);
  });

  it('is refused a second time: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.handBack(job);
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.handBack(job))).toBeNull();
  });

  it('is refused for a queued job: null, nothing written (attempts never go below 0)', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.handBack(job))).toBeNull();
  });

  it('writes no webhook message, even with an endpoint', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id, ['job.failed', 'job.succeeded', 'job.canceled']);
    await m.lifecycle.handBack(await runningJob(m, t));
    expect(await outboxOf(m.db, t.id)).toEqual([]);
  });
});
