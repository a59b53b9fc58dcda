import { describe, expect, it } from '@jest/globals';
import { ModelCache } from './model-cache.js';

class FakeModel {
  disposed = 0;
  constructor(
    readonly name: string,
    readonly bytes: number,
  ) {}
  dispose(): void {
    this.disposed++;
  }
}

describe('ModelCache (LRU by bytes)', () => {
  it('evicts the least recently used models until a new one fits, disposing each', () => {
    const cache = new ModelCache<FakeModel>(100);
    const a = new FakeModel('a', 40);
    const b = new FakeModel('b', 40);
    const c = new FakeModel('c', 40);
    cache.set('a', a);
    cache.set('b', b);
    expect(cache.get('a')).toBe(a); // a is now the most recent: b goes first
    cache.set('c', c);
    expect(cache.keys()).toEqual(['a', 'c']);
    expect([a.disposed, b.disposed, c.disposed]).toEqual([0, 1, 0]);
    expect(cache.bytes).toBe(80);
    expect(cache.get('b')).toBeUndefined();
  });

  it('evicts as many as needed for a big model, oldest first', () => {
    const cache = new ModelCache<FakeModel>(100);
    const small = ['a', 'b', 'c'].map((n) => new FakeModel(n, 30));
    small.forEach((m) => {
      cache.set(m.name, m);
    });
    const big = new FakeModel('big', 70);
    expect(cache.set('big', big)).toBe(true);
    expect(cache.keys()).toEqual(['c', 'big']);
    expect(small.map((m) => m.disposed)).toEqual([1, 1, 0]);
    expect(cache.bytes).toBe(100);
  });

  it('does not keep a model bigger than the whole budget, and evicts nothing for it', () => {
    const cache = new ModelCache<FakeModel>(100);
    const a = new FakeModel('a', 60);
    cache.set('a', a);
    const huge = new FakeModel('huge', 101);
    expect(cache.set('huge', huge)).toBe(false);
    expect(cache.keys()).toEqual(['a']);
    expect([a.disposed, huge.disposed]).toEqual([0, 0]); // the caller uses it once and disposes it
  });

  it('replacing a key disposes the old model; setting the same model again keeps it', () => {
    const cache = new ModelCache<FakeModel>(100);
    const v1 = new FakeModel('v1', 10);
    const v1b = new FakeModel('v1b', 20);
    cache.set('k', v1);
    expect(cache.set('k', v1)).toBe(true);
    expect(v1.disposed).toBe(0);
    cache.set('k', v1b);
    expect(v1.disposed).toBe(1);
    expect(cache.bytes).toBe(20);
    cache.delete('k');
    expect([v1b.disposed, cache.size, cache.bytes]).toEqual([1, 0, 0]);
  });
});
