import { describe, expect, it, jest } from '@jest/globals';
import pg from 'pg';
import {
  addEndpoint,
  computeUsage,
  createTenant,
  eventsOf,
  holdRow,
  outboxOf,
  publishedOnce,
  queuedJob,
  runningJob,
  useMedium,
  waitersOn,
  withoutWrites,
} from '../support.js';

const m = useMedium();

describe('start: queued|running → running', () => {
  it('moves a queued job to running, counting the attempt, with job.started as event 2', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    const started = await m.lifecycle.start(job.id, 'wrk_a', 'wasm');
    expect(started).toMatchObject({ job: { status: 'running', attempts: 1, workerId: 'wrk_a', backend: 'wasm', eventSeq: 2 } });
    const row = (await m.lifecycle.read(job.id))!;
    expect(row).toMatchObject({ status: 'running', attempts: 1, workerId: 'wrk_a', backend: 'wasm', error: null, finishedAt: null });
    expect(row.startedAt).toBeInstanceOf(Date);
    expect(await eventsOf(m.db, job.id)).toEqual([
      { seq: 1, type: 'job.queued', data: {} },
      { seq: 2, type: 'job.started', data: { worker_id: 'wrk_a', backend: 'wasm', attempt: 1 } },
    ]);
  });

  it("returns the quotas the job runs under (the plan's, with the tenant's overrides)", async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 5 });
    const started = await m.lifecycle.start((await queuedJob(m.db, t)).id, 'wrk_a', 'cpu');
    expect(started).toMatchObject({ quotas: { max_concurrent_jobs: 5 } });
  });

  it('publishes job.started once, after it committed', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.lifecycle.start(job.id, 'wrk_a', 'cpu');
    const p = await publishedOnce(m);
    expect(p.event).toMatchObject({ type: 'job.started', seq: 2n, jobId: job.id });
    expect(p.job.status).toBe('running');
  });

  it('meters nothing and calls no queue', async () => {
    const t = await createTenant(m.db);
    await m.lifecycle.start((await queuedJob(m.db, t)).id, 'wrk_a', 'cpu');
    expect(await computeUsage(m.db, t.id)).toEqual({});
    expect(m.queues.calls).toEqual([]);
  });

  it('starts a running job again (a stalled attempt picked up elsewhere): one more attempt, started_at kept', async () => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    const again = await m.lifecycle.start(job.id, 'wrk_b', 'cpu');
    expect(again).toMatchObject({ job: { status: 'running', attempts: 2, workerId: 'wrk_b', startedAt: job.startedAt } });
    expect((await eventsOf(m.db, job.id)).map((e) => [e.seq, e.type, e.data.attempt])).toEqual([
      [1, 'job.queued', undefined],
      [2, 'job.started', 1],
      [3, 'job.started', 2],
    ]);
  });

  it.each(['succeeded', 'failed', 'canceled'])('does not start a %s job: null, nothing written', async (end) => {
    const t = await createTenant(m.db);
    const job = await runningJob(m, t);
    if (end === 'succeeded') await m.lifecycle.succeed(job, { version: 1, result: {}, seconds: 1, progress: {} });
    if (end === 'failed') await m.lifecycle.fail(job, { code: 'x', message: 'x' }, 1);
    if (end === 'canceled') await m.lifecycle.canceled(job, ['running'], 1, 'requested');
    m.reset();
    expect(await withoutWrites(m, t.id, () => m.lifecycle.start(job.id, 'wrk_b', 'cpu'))).toBeNull();
  });

  it('returns null for a job that does not exist', async () => {
    expect(await m.lifecycle.start('job_doesnotexist', 'wrk_a', 'cpu')).toBeNull();
    expect(m.effects.list).toEqual([]);
  });

  it('writes job.started to an enabled endpoint, and no message without one', async () => {
    const hooked = await createTenant(m.db);
    const endpoint = await addEndpoint(m.db, hooked.id);
    const plain = await createTenant(m.db);
    const job = await queuedJob(m.db, hooked);
    await m.lifecycle.start(job.id, 'wrk_a', 'cpu');
    await m.lifecycle.start((await queuedJob(m.db, plain)).id, 'wrk_a', 'cpu');
    const outbox = await outboxOf(m.db, hooked.id);
    expect(outbox).toMatchObject([{ endpoint_id: endpoint, url: null, event_type: 'job.started' }]);
    expect(outbox[0].payload).toMatchObject({ type: 'job.started', data: { id: job.id, status: 'running', attempts: 1 } });
    expect(await outboxOf(m.db, plain.id)).toEqual([]);
  });

  it("writes job.started to the job's own webhook_url only when its webhook_events include start", async () => {
    const t = await createTenant(m.db);
    const withStart = await queuedJob(m.db, t, { webhookUrl: 'https://a.example.com/start', webhookEvents: ['start', 'completed'] });
    const completedOnly = await queuedJob(m.db, t, { webhookUrl: 'https://a.example.com/done', webhookEvents: ['completed'] });
    await m.lifecycle.start(withStart.id, 'wrk_a', 'cpu');
    await m.lifecycle.start(completedOnly.id, 'wrk_a', 'cpu');
    expect(await outboxOf(m.db, t.id)).toMatchObject([
      { endpoint_id: null, url: 'https://a.example.com/start', event_type: 'job.started' },
    ]);
  });
});

describe('start: max_concurrent_jobs', () => {
  it('refuses a queued job while the tenant runs max_concurrent_jobs: at_concurrency_limit, it stays queued, nothing written', async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 1 });
    await runningJob(m, t);
    const waiting = await queuedJob(m.db, t);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.start(waiting.id, 'wrk_a', 'cpu'))).toBe('at_concurrency_limit');
    expect((await m.lifecycle.read(waiting.id))!.status).toBe('queued');
  });

  it('starts a job that is already running again at the limit (it holds its own slot)', async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 1 });
    const job = await runningJob(m, t);
    expect(await m.lifecycle.start(job.id, 'wrk_b', 'cpu')).toMatchObject({ job: { status: 'running', attempts: 2 } });
  });

  it('starts the next queued job once the running one ended', async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 1 });
    const first = await runningJob(m, t);
    await m.lifecycle.succeed(first, { version: 1, result: {}, seconds: 1, progress: {} });
    const next = await queuedJob(m.db, t);
    expect(await m.lifecycle.start(next.id, 'wrk_a', 'cpu')).toMatchObject({ job: { status: 'running' } });
  });

  it('lets exactly one of two concurrent starts under a limit of 1 through', async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 1 });
    const [a, b] = [await queuedJob(m.db, t), await queuedJob(m.db, t)];
    const results = await Promise.all([m.lifecycle.start(a.id, 'wrk_a', 'cpu'), m.lifecycle.start(b.id, 'wrk_b', 'cpu')]);
    expect(results.filter((r) => r === 'at_concurrency_limit')).toHaveLength(1);
    expect(results.filter((r) => r && r !== 'at_concurrency_limit')).toHaveLength(1);
    const { rows } = await m.db.pool.query(
      `SELECT status, count(*)::int AS n FROM jobs WHERE tenant_id = $1 GROUP BY status ORDER BY status`,
      [t.id],
    );
    expect(rows).toEqual([
      { status: 'queued', n: 1 },
      { status: 'running', n: 1 },
    ]);
    expect(m.effects.list).toHaveLength(1);
  });

  it('makes a second start wait for the first to commit, then counts it (forced interleaving)', async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 1 });
    const [a, b] = [await queuedJob(m.db, t), await queuedJob(m.db, t)];
    // start(a) takes the tenant's turn (its counter row), counts 0 running, then waits for a's row.
    const row = await holdRow(m.db, a.id);
    const first = m.lifecycle.start(a.id, 'wrk_a', 'cpu');
    await waitersOn(m.db, 'transactionid');
    // start(b) must wait for the turn, not count the uncommitted start of a.
    const second = m.lifecycle.start(b.id, 'wrk_b', 'cpu');
    await Promise.race([second, waitersOn(m.db, 'transactionid', 2).catch(() => undefined)]);
    await row.release();
    expect(await first).toMatchObject({ job: { id: a.id, status: 'running' } });
    expect(await second).toBe('at_concurrency_limit');
    expect((await m.lifecycle.read(b.id))!.status).toBe('queued');
  });

  it('checks the limit for a job that went back to queued while its start waited for the turn', async () => {
    const t = await createTenant(m.db, { max_concurrent_jobs: 2 });
    const [a, x] = [await runningJob(m, t), await runningJob(m, t)];
    const b = await queuedJob(m.db, t);
    // A restart of x takes the turn (the counter row) and waits for x's row. a's first attempt
    // fails meanwhile: a is back to queued, its commit waits for the turn (the counter moves at
    // commit). Then start(b), and a restart of a (running when its statement began) wait too.
    const row = await holdRow(m.db, x.id);
    const restartX = m.lifecycle.start(x.id, 'wrk_x', 'cpu');
    await waitersOn(m.db, 'transactionid');
    const retryA = m.lifecycle.retry(a, { code: 'worker_crashed', message: 'x' }, 1, 1000);
    await waitersOn(m.db, 'transactionid', 2);
    const startB = m.lifecycle.start(b.id, 'wrk_b', 'cpu');
    await waitersOn(m.db, 'tuple', 1);
    const restartA = m.lifecycle.start(a.id, 'wrk_a2', 'cpu');
    await waitersOn(m.db, 'tuple', 2);
    await row.release();
    expect(await retryA).toMatchObject({ job: { status: 'queued' } });
    expect(await restartX).toMatchObject({ job: { status: 'running' } });
    expect(await startB).toMatchObject({ job: { status: 'running' } });
    expect(await restartA).toBe('at_concurrency_limit');
    const { rows } = await m.db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE tenant_id = $1 AND status = 'running'`, [t.id]);
    expect(rows[0].n).toBe(2);
  });

  it("does not count another tenant's running jobs", async () => {
    const busy = await createTenant(m.db, { max_concurrent_jobs: 1 });
    await runningJob(m, busy);
    const t = await createTenant(m.db, { max_concurrent_jobs: 1 });
    expect(await m.lifecycle.start((await queuedJob(m.db, t)).id, 'wrk_a', 'cpu')).toMatchObject({ job: { status: 'running' } });
  });
});

describe('start: a cancel asked for before the start', () => {
  it('does not start a queued job whose cancel was asked for: cancel_requested, nothing written', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    await m.db.pool.query('UPDATE jobs SET cancel_requested = true WHERE id = $1', [job.id]);
    expect(await withoutWrites(m, t.id, () => m.lifecycle.start(job.id, 'wrk_a', 'cpu'))).toBe('cancel_requested');
    expect((await m.lifecycle.read(job.id))!.status).toBe('queued');
  });

  it('says cancel_requested through the webhook path too (an enabled endpoint), writing no message', async () => {
    const t = await createTenant(m.db);
    await addEndpoint(m.db, t.id);
    const job = await queuedJob(m.db, t);
    await m.db.pool.query('UPDATE jobs SET cancel_requested = true WHERE id = $1', [job.id]);
    expect(await m.lifecycle.start(job.id, 'wrk_a', 'cpu')).toBe('cancel_requested');
    expect(await outboxOf(m.db, t.id)).toEqual([]);
  });
});

describe('start: one statement without webhooks', () => {
  it('starts a job of a tenant with no endpoint in one round trip, and one with an endpoint in a transaction', async () => {
    const plain = await createTenant(m.db);
    const hooked = await createTenant(m.db);
    await addEndpoint(m.db, hooked.id);
    // Every statement a pool client sends (pool.query included), as its first word.
    const sent = async (jobId: string) => {
      const spy = jest.spyOn(pg.Client.prototype, 'query');
      try {
        await m.lifecycle.start(jobId, 'wrk_a', 'cpu');
        return spy.mock.calls.map(
          ([q]) =>
            String(typeof q === 'string' ? q : (q as { text: string }).text)
              .trim()
              .split(/\s+/)[0],
        );
      } finally {
        spy.mockRestore();
      }
    };
    expect(await sent((await queuedJob(m.db, plain)).id)).toEqual(['WITH']);
    expect(await sent((await queuedJob(m.db, hooked)).id)).toEqual(['WITH', 'BEGIN', 'SELECT', 'WITH', 'WITH', 'COMMIT']);
    expect(await outboxOf(m.db, hooked.id)).toHaveLength(1);
  });
});
