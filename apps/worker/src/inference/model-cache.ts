/** What the cache holds: something of a known size that must be released when dropped (a loaded TF.js model). */
export interface CacheItem {
  readonly bytes: number;
  dispose(): void;
}

/**
 * A least-recently-used cache bounded by bytes, for the models an inference child keeps loaded
 * (keyed by version id). Adding an item evicts the least recently used ones, disposing them, until
 * it fits; an item bigger than the whole budget is not kept (the caller uses it once and disposes
 * it), so one huge model never flushes every other.
 */
export class ModelCache<T extends CacheItem> {
  // A Map iterates in insertion order: re-inserting on every hit keeps the oldest use first.
  private readonly items = new Map<string, T>();
  private used = 0;

  constructor(readonly budgetBytes: number) {}

  get(key: string): T | undefined {
    const item = this.items.get(key);
    if (item === undefined) return undefined;
    this.items.delete(key);
    this.items.set(key, item);
    return item;
  }

  /** Keeps the item, evicting as needed; false when it is bigger than the budget (then it is not kept). */
  set(key: string, item: T): boolean {
    if (this.items.get(key) === item) return this.get(key) !== undefined;
    this.delete(key);
    if (item.bytes > this.budgetBytes) return false;
    for (const [oldest, old] of this.items) {
      if (this.used + item.bytes <= this.budgetBytes) break;
      this.items.delete(oldest);
      this.used -= old.bytes;
      old.dispose();
    }
    this.items.set(key, item);
    this.used += item.bytes;
    return true;
  }

  delete(key: string): void {
    const item = this.items.get(key);
    if (item === undefined) return;
    this.items.delete(key);
    this.used -= item.bytes;
    item.dispose();
  }

  /** Keys from least to most recently used. */
  keys(): string[] {
    return [...this.items.keys()];
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.items.size;
  }
}
