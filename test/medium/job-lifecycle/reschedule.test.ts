import { describe, expect, it } from '@jest/globals';
import { createTenant, eventsOf, queuedJob, useMedium } from '../support.js';

const m = useMedium();

describe('reschedule (reconciler): a queued job the queues lost', () => {
  it('hands it to the scheduler again', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.lifecycle.reschedule(job);
    expect(m.queues.calls).toEqual([{ op: 'schedule', jobId: job.id, status: 'queued' }]);
  });

  it('changes no row and publishes nothing', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.lifecycle.reschedule(job);
    expect(await m.lifecycle.read(job.id)).toEqual(job);
    expect(await eventsOf(m.db, job.id)).toEqual([{ seq: 1, type: 'job.queued', data: {} }]);
    expect(m.effects.list).toEqual([]);
  });
});
