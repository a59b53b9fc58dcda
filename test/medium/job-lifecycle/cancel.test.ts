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

describe('cancel (API) of a queued job: queued → canceled', () => {
  it('cancels it at once: canceled, finished_at, cancel_requested', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    const canceled = await m.lifecycle.cancel(t.id, job.id);
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({ status: 'canceled', cancelRequested: true, attempts: 0, startedAt: null });
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(canceled).toEqual(row);
  });

  it('writes job.canceled (reason requested) as event 2', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.lifecycle.cancel(t.id, job.id);
    expect(await eventsOf(m.db, job.id)).toEqual([
      { seq: 1, type: 'job.queued', data: {} },
      { seq: 2, type: 'job.canceled', data: { reason: 'requested' } },
    ]);
  });

  it('takes it out of the queues (unschedule), publishes once after commit, meters nothing', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.lifecycle.cancel(t.id, job.id);
    expect(m.queues.calls).toEqual([{ op: 'unschedule', jobId: job.id, status: 'queued' }]);
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.canceled', seq: 2n });
    expect(await computeUsage(m.db, t.id)).toEqual({});
  });

  it('writes job.canceled to an enabled endpoint, and no message without one', async () => {
    const hooked = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, hooked.id);
    const plain = await createTenant(m.db);
    const job = await queuedJob(m.db, hooked);
    await m.lifecycle.cancel(hooked.id, job.id);
    await m.lifecycle.cancel(plain.id, (await queuedJob(m.db, plain)).id);
    expect(await outboxOf(m.db, hooked.id)).toMatchObject([
      { endpoint_id: endpoint, event_type: 'job.canceled', payload: { data: { id: job.id, status: 'canceled', cancel_requested: true } } },
    ]);
    expect(await outboxOf(m.db, plain.id)).toEqual([]);
  });

  it('keeps a worker from starting it meanwhile: the start says cancel_requested, the cancel ends it', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    let start: unknown;
    m.queues.duringUnschedule = async () => {
      start = await m.lifecycle.start(job.id, 'wrk_a', 'cpu');
    };
    expect(await m.lifecycle.cancel(t.id, job.id)).toMatchObject({ status: 'canceled', cancelRequested: true });
    expect(start).toBe('cancel_requested');
    expect((await eventsOf(m.db, job.id)).map((e) => e.type)).toEqual(['job.queued', 'job.canceled']);
  });

  it('leaves a job that left queued meanwhile as it stands, flagged, and tells the worker', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    m.queues.duringUnschedule = () => m.lifecycle.fail(job, { code: 'no_gpu_worker', message: 'x' }, 0, ['queued']);
    expect(await m.lifecycle.cancel(t.id, job.id)).toMatchObject({ status: 'failed', cancelRequested: true });
    expect(m.queues.calls).toEqual([
      { op: 'unschedule', jobId: job.id, status: 'queued' },
      { op: 'stopRunning', jobId: job.id },
    ]);
    expect((await eventsOf(m.db, job.id)).map((e) => e.type)).toEqual(['job.queued', 'job.failed']);
  });

  it('answers { finished } a second time and writes nothing', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.lifecycle.cancel(t.id, job.id);
    m.reset();
    const again = await withoutWrites(m, t.id, () => m.lifecycle.cancel(t.id, job.id));
    expect(again).toEqual({ finished: await m.lifecycle.read(job.id) });
  });

  it('lets an admin (no tenant) cancel any tenant’s job', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await m.lifecycle.cancel(null, job.id)).toMatchObject({ status: 'canceled' });
  });
});

describe('cancel (API) of a running job: flagged, the worker told', () => {
  it('leaves it running with cancel_requested, and writes no event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    const flagged = await m.lifecycle.cancel(t.id, job.id);
    expect(flagged).toMatchObject({ status: 'running', cancelRequested: true, finishedAt: null });
    expect((await m.lifecycle.read(job.id))!).toMatchObject({ status: 'running', cancelRequested: true, eventSeq: 2 });
    expect((await eventsOf(m.db, job.id)).map((e) => e.type)).toEqual(['job.queued', 'job.started']);
  });

  it('tells the worker (stopRunning) and publishes nothing', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.cancel(t.id, job.id);
    expect(m.queues.calls).toEqual([{ op: 'stopRunning', jobId: job.id }]);
    expect(m.effects.list).toEqual([]);
  });

  it('writes no webhook message and meters nothing', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id, ['job.canceled']);
    const job = await runningJob(m, t);
    await m.lifecycle.cancel(t.id, job.id);
    expect(await outboxOf(m.db, t.id)).toEqual([]);
    expect(await computeUsage(m.db, t.id)).toEqual({});
  });
});

describe('cancel (API): tenant isolation', () => {
  it("returns null for another tenant's queued job and changes nothing", async () => {
    const owner = await createTenant(m.db);
    const other = await createTenant(m.db);
    const job = await queuedJob(m.db, owner);
    expect(await withoutWrites(m, owner.id, () => m.lifecycle.cancel(other.id, job.id))).toBeNull();
  });

  it("returns null for another tenant's running job and changes nothing", async () => {
    const owner = await createTenant(m.db);
    const other = await createTenant(m.db);
    const job = await runningJob(m, owner);
    expect(await withoutWrites(m, owner.id, () => m.lifecycle.cancel(other.id, job.id))).toBeNull();
  });

  it("returns null for another tenant's finished job (not even { finished })", async () => {
    const owner = await createTenant(m.db);
    const other = await createTenant(m.db);
    const job = await queuedJob(m.db, owner);
    await m.lifecycle.cancel(owner.id, job.id);
    m.reset();
    expect(await withoutWrites(m, owner.id, () => m.lifecycle.cancel(other.id, job.id))).toBeNull();
  });

  it('returns null for a job that does not exist', async () => {
    const t = await createTenant(m.db);
    expect(await m.lifecycle.cancel(t.id, 'job_doesnotexist')).toBeNull();
    expect(m.queues.calls).toEqual([]);
  });
});

describe('canceled (worker): running|queued → canceled', () => {
  it('ends a flagged running job: canceled, finished_at, the seconds it ran, the reason in job.canceled', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.cancel(t.id, job.id);
    await m.lifecycle.canceled(job, ['running'], 1.25, 'requested');
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({ status: 'canceled', cancelRequested: true, computeSeconds: 1.25, attempts: 1 });
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect((await eventsOf(m.db, job.id)).at(-1)).toEqual({ seq: 3, type: 'job.canceled', data: { reason: 'requested' } });
  });

  it('meters the seconds, rounded up, for the UTC day', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.canceled(await runningJob(m, t), ['running'], 1.25, 'requested');
    expect(await computeUsage(m.db, t.id)).toEqual({ [utcToday()]: 2 });
  });

  it('publishes job.canceled once, after it committed', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.canceled(job, ['running'], 1, 'requested');
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.canceled', seq: 3n });
  });

  it('writes job.canceled to an enabled endpoint', async () => {
    const t = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, t.id, ['job.canceled']);
    await m.lifecycle.canceled(await runningJob(m, t), ['running'], 1, 'requested');
    expect(await outboxOf(m.db, t.id)).toMatchObject([{ endpoint_id: endpoint, event_type: 'job.canceled' }]);
  });

  it('cancels a job flagged before it began, from queued, metering nothing', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await m.lifecycle.canceled(job, ['queued'], 0, 'requested')).toMatchObject({ job: { status: 'canceled', attempts: 0 } });
    expect(await computeUsage(m.db, t.id)).toEqual({});
  });

  it('is refused a second time: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.canceled(job, ['running'], 1, 'requested');
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.canceled(job, ['running'], 1, 'requested'))).toBeNull();
  });

  it('is refused from a status not named: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.canceled(job, ['running'], 1, 'requested'))).toBeNull();
  });
});
