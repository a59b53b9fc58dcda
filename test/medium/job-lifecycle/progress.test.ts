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
const epoch = (n: number) => ({ percent: n * 10, epoch: n, epochs: 10, eta_seconds: 10 - n });

describe('progress: running → running', () => {
  it('stores the progress and writes job.progress with the data given, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    const moved = await m.lifecycle.progress(job.id, epoch(3), { epoch: 3, loss: 0.5 });
    expect(moved!.job).toMatchObject({ status: 'running', progress: epoch(3), attempts: 1, eventSeq: 3 });
    expect((await m.lifecycle.read(job.id))!.progress).toEqual(epoch(3));
    expect((await eventsOf(m.db, job.id)).at(-1)).toEqual({ seq: 3, type: 'job.progress', data: { epoch: 3, loss: 0.5 } });
  });

  it('numbers successive progress events without gaps', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    for (const n of [1, 2, 3]) await m.lifecycle.progress(job.id, epoch(n), { epoch: n });
    expect((await eventsOf(m.db, job.id)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await m.lifecycle.read(job.id))!.eventSeq).toBe(5);
  });

  it('publishes each progress once, after it committed', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.progress(job.id, epoch(1), { epoch: 1 });
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.progress', seq: 3n });
  });

  it('meters nothing and calls no queue', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.progress(job.id, epoch(1), { epoch: 1 });
    expect(await computeUsage(m.db, t.id)).toEqual({});
    expect(m.queues.calls).toEqual([]);
  });

  it('is refused for a queued job: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.progress(job.id, epoch(1), { epoch: 1 }))).toBeNull();
  });

  it('is refused once the job ended: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.succeed(job, { version: 1, result: {}, seconds: 1, progress: epoch(10) });
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.progress(job.id, epoch(9), { epoch: 9 }))).toBeNull();
  });

  it('writes job.progress to an enabled endpoint, and no message without one', async () => {
    const hooked = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, hooked.id);
    const plain = await createTenant(m.db);
    const job = await runningJob(m, hooked);
    await m.lifecycle.progress(job.id, epoch(1), { epoch: 1 });
    await m.lifecycle.progress((await runningJob(m, plain)).id, epoch(1), { epoch: 1 });
    const progress = (await outboxOf(m.db, hooked.id)).filter((o) => o.event_type === 'job.progress');
    expect(progress).toMatchObject([
      { endpoint_id: endpoint, payload: { type: 'job.progress', data: { id: job.id, progress: { epoch: 1 } } } },
    ]);
    expect(await outboxOf(m.db, plain.id)).toEqual([]);
  });

  it('drops a second progress message to the same endpoint within 500 ms (the event is still written)', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id, ['job.progress']);
    const job = await runningJob(m, t);
    await m.lifecycle.progress(job.id, epoch(1), { epoch: 1 });
    await m.lifecycle.progress(job.id, epoch(2), { epoch: 2 });
    expect((await outboxOf(m.db, t.id)).map((o) => o.payload.data.progress.epoch)).toEqual([1]);
    expect((await eventsOf(m.db, job.id)).map((e) => e.type)).toEqual(['job.queued', 'job.started', 'job.progress', 'job.progress']);
  });

  it("writes job.progress to the job's own webhook_url only when its webhook_events include progress", async () => {
    const t = await createTenant(m.db);
    const withProgress = await runningJob(m, t, { webhookUrl: 'https://a.example.com/p', webhookEvents: ['progress'] });
    const completedOnly = await runningJob(m, t, { webhookUrl: 'https://a.example.com/c', webhookEvents: ['completed'] });
    await m.lifecycle.progress(withProgress.id, epoch(1), { epoch: 1 });
    await m.lifecycle.progress(completedOnly.id, epoch(1), { epoch: 1 });
    expect(await outboxOf(m.db, t.id)).toMatchObject([{ endpoint_id: null, url: 'https://a.example.com/p', event_type: 'job.progress' }]);
  });
});
