import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { Admitted, EncodedAdmission, Job } from '@app/db';
import { BatchQueue, type BatchQueueOptions } from './batch-queue.js';

/** A submission whose JSON is `size` bytes long and whose answer names it, so each caller can see it got its own. */
const sub = (tag: string, size = 10): EncodedAdmission => ({ tenantId: 'ten_a', json: `{"tag":"${tag}"}`.padEnd(size, ' ') });
const tagOf = (a: EncodedAdmission) => /"tag":"([^"]*)"/.exec(a.json)![1];
const accepted = (a: EncodedAdmission): Admitted => ({ job: { id: `job_${tagOf(a)}` } as Job, running: 0 });

const defaults: BatchQueueOptions = { windowMs: 0, maxBatch: 100, maxBatchBytes: 1_000_000, concurrency: 1 };

/**
 * A queue whose writes are held until released (`release()` answers the oldest write still
 * held), recording each batch's tags and when (on the fake clock) it was written.
 */
function harness(
  options: Partial<BatchQueueOptions> = {},
  answer: (batch: EncodedAdmission[]) => Admitted[] | Error = (b) => b.map(accepted),
  unavailable: (err: unknown) => boolean = (err) => (err as Error).message === 'database down',
) {
  const batches: Array<{ tags: string[]; at: number }> = [];
  const held: Array<() => void> = [];
  const splits: number[] = [];
  const t0 = Date.now();
  let auto = false;
  const queue = new BatchQueue<EncodedAdmission, Admitted>(
    { ...defaults, ...options },
    (batch) => {
      batches.push({ tags: batch.map(tagOf), at: Date.now() - t0 });
      return new Promise<Admitted[]>((resolve, reject) => {
        const settle = () => {
          const out = answer(batch);
          if (out instanceof Error) reject(out);
          else resolve(out);
        };
        if (auto) settle();
        else held.push(settle);
      });
    },
    unavailable,
    (_err, size) => splits.push(size),
  );
  return {
    queue,
    batches,
    splits,
    /** Answers the oldest write still held. */
    release: async () => {
      held.shift()!();
      await jest.advanceTimersByTimeAsync(0);
    },
    /** From now on every write is answered at once (and so are those still held). */
    answerAll: () => {
      auto = true;
      for (const settle of held.splice(0)) settle();
    },
    tags: (rs: Admitted[]) => rs.map((r) => r.job?.id ?? r.refused),
  };
}

describe('BatchQueue (admission batches)', () => {
  // On Jest's fake clock (setImmediate and setTimeout alike): a window is exact, whatever else uses the machine's cores.
  afterEach(() => {
    jest.useRealTimers();
  });

  it('writes a lone submission at once when nothing is being written (window 0: the end of the event-loop turn)', async () => {
    jest.useFakeTimers();
    const h = harness();
    const one = h.queue.submit(sub('a'));
    await jest.advanceTimersByTimeAsync(0);
    expect(h.batches).toEqual([{ tags: ['a'], at: 0 }]);
    await h.release();
    expect(await one).toEqual({ job: { id: 'job_a' }, running: 0 });
  });

  it('groups what arrives in one event-loop turn, and what arrives while a batch is being written forms the next batch', async () => {
    jest.useFakeTimers();
    const h = harness();
    const first = [h.queue.submit(sub('a')), h.queue.submit(sub('b'))];
    await jest.advanceTimersByTimeAsync(0);
    expect(h.batches.map((b) => b.tags)).toEqual([['a', 'b']]);
    // Written for 7 ms: c, d, e wait, however long, and are not written beside it (concurrency 1).
    const second = ['c', 'd', 'e'].map((t) => h.queue.submit(sub(t)));
    await jest.advanceTimersByTimeAsync(7);
    expect(h.queue.waiting).toEqual({ pending: 3, writing: 1 });
    expect(h.batches).toHaveLength(1);
    await h.release();
    // The next batch starts as the first is done, not a window later.
    expect(h.batches.map((b) => ({ tags: b.tags, at: b.at }))).toEqual([
      { tags: ['a', 'b'], at: 0 },
      { tags: ['c', 'd', 'e'], at: 7 },
    ]);
    expect(h.tags(await Promise.all(first))).toEqual(['job_a', 'job_b']);
    await h.release();
    expect(h.tags(await Promise.all(second))).toEqual(['job_c', 'job_d', 'job_e']);
    expect(h.queue.waiting).toEqual({ pending: 0, writing: 0 });
  });

  it('writes the next batch before it hands out the answers of the one that finished', async () => {
    jest.useFakeTimers();
    const h = harness();
    const order: string[] = [];
    const first = h.queue.submit(sub('a')).then(() => order.push(`answered a; batches written: ${h.batches.length}`));
    await jest.advanceTimersByTimeAsync(0);
    void h.queue.submit(sub('b'));
    await h.release();
    await first;
    expect(order).toEqual(['answered a; batches written: 2']);
    h.answerAll();
  });

  it('with a window, waits windowMs after the first submission when nothing is being written', async () => {
    jest.useFakeTimers();
    const h = harness({ windowMs: 5 });
    const out = [h.queue.submit(sub('a'))];
    await jest.advanceTimersByTimeAsync(3);
    out.push(h.queue.submit(sub('b')));
    // The window counts from the first submission, not the last.
    await jest.advanceTimersByTimeAsync(1);
    expect(h.batches).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(h.batches).toEqual([{ tags: ['a', 'b'], at: 5 }]);
    h.answerAll();
    expect(h.tags(await Promise.all(out))).toEqual(['job_a', 'job_b']);
  });

  it('closes a batch at maxBatch submissions or maxBatchBytes without waiting for the window, in arrival order', async () => {
    jest.useFakeTimers();
    const h = harness({ windowMs: 10_000, maxBatch: 3, maxBatchBytes: 100, concurrency: 4 });
    const out = ['a', 'b', 'c', 'd'].map((t) => h.queue.submit(sub(t)));
    await jest.advanceTimersByTimeAsync(0);
    // The third closes the first batch; the fourth waits for its window.
    expect(h.batches).toEqual([{ tags: ['a', 'b', 'c'], at: 0 }]);
    out.push(h.queue.submit(sub('big', 150)), h.queue.submit(sub('e', 40)));
    await jest.advanceTimersByTimeAsync(0);
    // d (10 bytes) and big (150) reach maxBatchBytes: d goes without big, which would overflow it, and big
    // goes alone; e starts a window of its own.
    expect(h.batches.map((b) => b.tags)).toEqual([['a', 'b', 'c'], ['d'], ['big']]);
    await jest.advanceTimersByTimeAsync(9_999);
    expect(h.batches).toHaveLength(3);
    await jest.advanceTimersByTimeAsync(1);
    expect(h.batches.map((b) => ({ tags: b.tags, at: b.at }))).toEqual([
      { tags: ['a', 'b', 'c'], at: 0 },
      { tags: ['d'], at: 0 },
      { tags: ['big'], at: 0 },
      { tags: ['e'], at: 10_000 },
    ]);
    h.answerAll();
    expect(h.tags(await Promise.all(out))).toEqual(['job_a', 'job_b', 'job_c', 'job_d', 'job_big', 'job_e']);
  });

  it('never writes more than `concurrency` batches at once', async () => {
    jest.useFakeTimers();
    const h = harness({ maxBatch: 1, concurrency: 2 });
    const out = ['a', 'b', 'c', 'd', 'e'].map((t) => h.queue.submit(sub(t)));
    await jest.advanceTimersByTimeAsync(0);
    expect(h.queue.waiting).toEqual({ pending: 3, writing: 2 });
    expect(h.batches.map((b) => b.tags)).toEqual([['a'], ['b']]);
    await h.release();
    expect(h.batches.map((b) => b.tags)).toEqual([['a'], ['b'], ['c']]);
    h.answerAll();
    await jest.advanceTimersByTimeAsync(0);
    expect(h.batches.map((b) => b.tags)).toEqual([['a'], ['b'], ['c'], ['d'], ['e']]);
    expect(h.tags(await Promise.all(out))).toEqual(['job_a', 'job_b', 'job_c', 'job_d', 'job_e']);
  });

  it("hands each submission its own answer, refusals included, in the batch's order", async () => {
    const h = harness({}, (batch) => batch.map((a, i) => (i < 2 ? accepted(a) : { refused: 'max_queued_jobs' as const, count: 2 })));
    h.answerAll();
    const out = await Promise.all(['a', 'b', 'c', 'd'].map((t) => h.queue.submit(sub(t))));
    expect(h.batches.map((b) => b.tags)).toEqual([['a', 'b', 'c', 'd']]);
    expect(out).toEqual([
      { job: { id: 'job_a' }, running: 0 },
      { job: { id: 'job_b' }, running: 0 },
      { refused: 'max_queued_jobs', count: 2 },
      { refused: 'max_queued_jobs', count: 2 },
    ]);
  });

  it('fails every submission of a batch with the error when the database is unavailable, and writes the next batch', async () => {
    let down = true;
    const h = harness({}, (batch) => (down ? new Error('database down') : batch.map(accepted)));
    h.answerAll();
    const out = ['a', 'b', 'c'].map((t) => h.queue.submit(sub(t)).catch((err: Error) => err.message));
    expect(await Promise.all(out)).toEqual(['database down', 'database down', 'database down']);
    // One statement, no retries one by one: each would have had that error alone.
    expect(h.batches.map((b) => b.tags)).toEqual([['a', 'b', 'c']]);
    expect(h.splits).toEqual([]);
    down = false;
    expect(await h.queue.submit(sub('d'))).toEqual({ job: { id: 'job_d' }, running: 0 });
  });

  it('admits the others when one submission fails the batch: each is written alone and gets its own answer', async () => {
    const h = harness({}, (batch) => (batch.some((a) => tagOf(a) === 'bad') ? new Error('invalid byte sequence') : batch.map(accepted)));
    h.answerAll();
    const out = ['a', 'bad', 'b'].map((t) =>
      h.queue.submit(sub(t)).then(
        (r) => r.job?.id,
        (err: Error) => err.message,
      ),
    );
    expect(await Promise.all(out)).toEqual(['job_a', 'invalid byte sequence', 'job_b']);
    expect(h.batches.map((b) => b.tags)).toEqual([['a', 'bad', 'b'], ['a'], ['bad'], ['b']]);
    expect(h.splits).toEqual([3]);
  });

  it('fails a batch whose answers do not match its submissions, rather than hand out the wrong jobs', async () => {
    const h = harness({}, (batch) => (batch.length > 1 ? batch.slice(1).map(accepted) : batch.map(accepted)));
    h.answerAll();
    const out = await Promise.all(['a', 'b'].map((t) => h.queue.submit(sub(t))));
    // Written again one by one, each gets its own.
    expect(h.tags(out)).toEqual(['job_a', 'job_b']);
  });

  it('drain writes what waits for a window and resolves once nothing is being written', async () => {
    jest.useFakeTimers();
    const h = harness({ windowMs: 10_000 });
    const out = h.queue.submit(sub('a'));
    let drained = false;
    const draining = h.queue.drain().then(() => {
      drained = true;
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(h.batches.map((b) => b.tags)).toEqual([['a']]);
    expect(drained).toBe(false);
    await h.release();
    await draining;
    expect(drained).toBe(true);
    expect((await out).job?.id).toBe('job_a');
  });
});
