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
const outcome = (seconds: number, pages?: object[]) => ({
  version: 2,
  result: { metrics: { accuracy: 0.9 } },
  seconds,
  progress: { percent: 100, epoch: 5, epochs: 5 },
  ...(pages ? { pages } : {}),
});

async function outputs(jobId: string) {
  const { rows } = await m.db.pool.query('SELECT page, data FROM job_outputs WHERE job_id = $1 ORDER BY page', [jobId]);
  return rows;
}

describe('succeed: running → succeeded', () => {
  it('ends the job with its version, result, progress and finished_at', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    const moved = await m.lifecycle.succeed(job, outcome(2.5));
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({
      status: 'succeeded',
      version: 2,
      result: { metrics: { accuracy: 0.9 } },
      progress: { percent: 100, epoch: 5, epochs: 5 },
      computeSeconds: 2.5,
      attempts: 1,
      startedAt: job.startedAt,
      error: null,
    });
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(moved!.job).toEqual(row);
  });

  it('writes job.succeeded with the result as its data, as the next event', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.succeed(job, outcome(1));
    expect(await eventsOf(m.db, job.id)).toMatchObject([
      { seq: 1, type: 'job.queued' },
      { seq: 2, type: 'job.started' },
      { seq: 3, type: 'job.succeeded', data: { metrics: { accuracy: 0.9 } } },
    ]);
  });

  it("meters the attempt's seconds, rounded up, for the UTC day", async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.succeed(await runningJob(m, t), outcome(2.25));
    expect(await computeUsage(m.db, t.id)).toEqual({ [utcToday()]: 3 });
  });

  it("adds its seconds to earlier attempts' on the row and in the meter", async () => {
    const t = await createTenant(m.db);
    const first = await runningJob(m, t);
    await m.lifecycle.retry(first, { code: 'worker_crashed', message: 'x' }, 1.5, 1000);
    const second = await m.lifecycle.start(first.id, 'wrk_b', 'cpu');
    if (!second || typeof second === 'string') throw new Error('not started');
    await m.lifecycle.succeed(second.job, outcome(2.25));
    expect((await m.lifecycle.read(first.id))!).toMatchObject({ computeSeconds: 3.75, attempts: 2, startedAt: first.startedAt });
    expect(await computeUsage(m.db, t.id)).toEqual({ [utcToday()]: 2 + 3 });
  });

  it('publishes job.succeeded once, after it committed', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.succeed(await runningJob(m, t), outcome(1));
    const p = await publishedOnce(m);
    expect(p.event).toMatchObject({ type: 'job.succeeded', seq: 3n });
    expect(m.queues.calls).toEqual([]);
  });

  it('is refused a second time: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.succeed(job, outcome(1, [{ predictions: [1] }]));
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.succeed(job, outcome(5, [{ predictions: [2] }])))).toBeNull();
  });

  it('is refused for a queued job: null, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.succeed(job, outcome(1, [{ predictions: [1] }])))).toBeNull();
  });

  it('writes the output pages, numbered from 0', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.succeed(job, outcome(1, [{ predictions: [1, 2] }, { predictions: [3] }]));
    expect(await outputs(job.id)).toEqual([
      { page: 0, data: { predictions: [1, 2] } },
      { page: 1, data: { predictions: [3] } },
    ]);
  });

  it("replaces an earlier attempt's output pages", async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    for (const page of [0, 1, 2]) {
      await m.db.pool.query('INSERT INTO job_outputs (job_id, page, data) VALUES ($1, $2, $3)', [job.id, page, { stale: page }]);
    }
    await m.lifecycle.succeed(job, outcome(1, [{ predictions: ['new'] }]));
    expect(await outputs(job.id)).toEqual([{ page: 0, data: { predictions: ['new'] } }]);
  });

  it('leaves the outputs alone when it has no pages (training)', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    await m.lifecycle.succeed(job, outcome(1));
    expect(await outputs(job.id)).toEqual([]);
  });

  it('writes job.succeeded to an enabled endpoint, and no message without one', async () => {
    const hooked = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, hooked.id, ['job.succeeded']);
    const plain = await createTenant(m.db);
    const job = await runningJob(m, hooked);
    await m.lifecycle.succeed(job, outcome(1));
    await m.lifecycle.succeed(await runningJob(m, plain), outcome(1));
    expect(await outboxOf(m.db, hooked.id)).toMatchObject([
      {
        endpoint_id: endpoint,
        url: null,
        event_type: 'job.succeeded',
        payload: { type: 'job.succeeded', data: { id: job.id, status: 'succeeded' } },
      },
    ]);
    expect(await outboxOf(m.db, plain.id)).toEqual([]);
  });

  it("writes job.succeeded to the job's own webhook_url when its webhook_events include completed", async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t, { webhookUrl: 'https://a.example.com/done', webhookEvents: ['completed'] });
    await m.lifecycle.succeed(job, outcome(1));
    expect(await outboxOf(m.db, t.id)).toMatchObject([
      { endpoint_id: null, url: 'https://a.example.com/done', event_type: 'job.succeeded', payload: { data: { status: 'succeeded' } } },
    ]);
  });

  it('skips an endpoint that is disabled', async () => {
    const t = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, t.id);
    await m.db.pool.query('UPDATE webhook_endpoints SET enabled = false WHERE id = $1', [endpoint]);
    await m.lifecycle.succeed(await runningJob(m, t), outcome(1));
    expect(await outboxOf(m.db, t.id)).toEqual([]);
  });
});
