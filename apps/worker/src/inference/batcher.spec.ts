import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Batcher } from './batcher.js';

/** A request of `rows` rows whose answer is its own tag, so each caller can see it got its share back. */
interface Req {
  tag: string;
  rows: number;
}

function recorder(options: { maxRows: number; maxDelayMs: number }, run?: (items: Req[]) => Promise<string[]>) {
  const batches: Array<{ key: string; tags: string[]; at: number }> = [];
  const t0 = Date.now(); // fake timers' clock in the timing tests
  const batcher = new Batcher<Req, string>(
    options,
    (r) => r.rows,
    async (key, items) => {
      batches.push({ key, tags: items.map((i) => i.tag), at: Date.now() - t0 });
      return run ? run(items) : items.map((i) => `out:${i.tag}`);
    },
  );
  return { batcher, batches };
}

describe('Batcher', () => {
  // The timing tests run on Jest's fake clock: a window is exact, whatever else uses the machine's cores.
  afterEach(() => {
    jest.useRealTimers();
  });

  it('closes a batch as soon as it holds maxRows rows, without waiting for the delay', async () => {
    jest.useFakeTimers();
    const { batcher, batches } = recorder({ maxRows: 4, maxDelayMs: 10_000 });
    const out = Promise.all(['a', 'b', 'c', 'd'].map((tag) => batcher.submit('v1', { tag, rows: 1 })));
    // no time passes: the fourth row closes the batch
    await jest.advanceTimersByTimeAsync(0);
    expect(batches.map((b) => b.tags)).toEqual([['a', 'b', 'c', 'd']]);
    expect(batches[0].at).toBe(0);
    expect(await out).toEqual(['out:a', 'out:b', 'out:c', 'out:d']);
  });

  it('closes a batch that is not full maxDelayMs after its first request', async () => {
    jest.useFakeTimers();
    const { batcher, batches } = recorder({ maxRows: 64, maxDelayMs: 40 });
    const first = batcher.submit('v1', { tag: 'a', rows: 1 });
    await jest.advanceTimersByTimeAsync(15);
    const second = batcher.submit('v1', { tag: 'b', rows: 1 });
    // the window counts from the first request, not the last
    await jest.advanceTimersByTimeAsync(24);
    expect(batches).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(batches.map((b) => ({ tags: b.tags, at: b.at }))).toEqual([{ tags: ['a', 'b'], at: 40 }]);
    expect(await Promise.all([first, second])).toEqual(['out:a', 'out:b']);
  });

  it('splits the answers back per request in order, and keeps versions apart', async () => {
    const { batcher, batches } = recorder({ maxRows: 100, maxDelayMs: 5 });
    const out = await Promise.all([
      batcher.submit('v1', { tag: 'a', rows: 3 }),
      batcher.submit('v2', { tag: 'x', rows: 1 }),
      batcher.submit('v1', { tag: 'b', rows: 2 }),
    ]);
    expect(out).toEqual(['out:a', 'out:x', 'out:b']);
    expect(batches.map((b) => [b.key, b.tags])).toEqual([
      ['v1', ['a', 'b']],
      ['v2', ['x']],
    ]);
  });

  it('never splits a request: one that would overflow the open batch starts the next, one bigger than maxRows is alone', async () => {
    const { batcher, batches } = recorder({ maxRows: 4, maxDelayMs: 5 });
    await Promise.all([
      batcher.submit('v', { tag: 'a', rows: 3 }),
      batcher.submit('v', { tag: 'b', rows: 2 }),
      batcher.submit('v', { tag: 'big', rows: 10 }),
      batcher.submit('v', { tag: 'c', rows: 1 }),
    ]);
    expect(batches.map((b) => b.tags)).toEqual([['a'], ['b'], ['big'], ['c']]);
  });

  it('with maxRows 1 runs every request as its own call (batching off)', async () => {
    const { batcher, batches } = recorder({ maxRows: 1, maxDelayMs: 50 });
    await Promise.all(['a', 'b', 'c'].map((tag) => batcher.submit('v', { tag, rows: 1 })));
    expect(batches.map((b) => b.tags)).toEqual([['a'], ['b'], ['c']]);
  });

  it('fails every request of a batch whose run throws, and only that batch', async () => {
    const { batcher } = recorder({ maxRows: 2, maxDelayMs: 5 }, async (items) => {
      if (items.some((i) => i.tag === 'bad')) throw new Error('child crashed');
      return items.map((i) => i.tag);
    });
    const results = await Promise.allSettled([
      batcher.submit('v', { tag: 'a', rows: 1 }),
      batcher.submit('v', { tag: 'bad', rows: 1 }),
      batcher.submit('v', { tag: 'c', rows: 1 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect((results[0] as PromiseRejectedResult).reason.message).toBe('child crashed');
  });

  it('fails the batch when run answers a different number of outputs than requests', async () => {
    const { batcher } = recorder({ maxRows: 2, maxDelayMs: 5 }, async () => ['only one']);
    const results = await Promise.allSettled([batcher.submit('v', { tag: 'a', rows: 1 }), batcher.submit('v', { tag: 'b', rows: 1 })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('flush closes open batches at once (shutdown)', async () => {
    const { batcher, batches } = recorder({ maxRows: 64, maxDelayMs: 60_000 });
    const pending = batcher.submit('v', { tag: 'a', rows: 1 });
    expect(batcher.openBatches).toBe(1);
    batcher.flush();
    expect(await pending).toBe('out:a');
    expect(batches).toHaveLength(1);
    expect(batcher.openBatches).toBe(0);
  });
});
