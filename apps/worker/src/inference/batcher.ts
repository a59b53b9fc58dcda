export interface BatcherOptions {
  /** A batch closes as soon as it holds this many rows (1: every request is its own batch). */
  maxRows: number;
  /** …or this long after its first request arrived, whichever comes first. */
  maxDelayMs: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

interface OpenBatch<I, O> {
  pending: Array<Pending<I, O>>;
  rows: number;
  timer: NodeJS.Timeout | null;
}

/**
 * Dynamic batching, after Triton's dynamic batcher: requests with the same key (a model version)
 * that arrive close together are run as one call. A batch closes when it reaches `maxRows` rows or
 * `maxDelayMs` after its first request; a request that would overflow an open batch closes it and
 * starts the next, and a request bigger than `maxRows` is a batch of its own (requests are never
 * split). `run` gets the batch's items in arrival order and returns one output per item, in the
 * same order; if it throws, every request of the batch fails with that error.
 */
export class Batcher<I, O> {
  private readonly open = new Map<string, OpenBatch<I, O>>();

  constructor(
    private readonly options: BatcherOptions,
    private readonly rowsOf: (item: I) => number,
    private readonly run: (key: string, items: I[]) => Promise<O[]>,
  ) {}

  submit(key: string, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const rows = this.rowsOf(item);
      let batch = this.open.get(key);
      if (batch && batch.rows + rows > this.options.maxRows) {
        this.close(key, batch);
        batch = undefined;
      }
      if (!batch) {
        batch = { pending: [], rows: 0, timer: null };
        this.open.set(key, batch);
      }
      batch.pending.push({ item, resolve, reject });
      batch.rows += rows;
      if (batch.rows >= this.options.maxRows) this.close(key, batch);
      else if (batch.timer === null) {
        const b = batch;
        b.timer = setTimeout(() => this.close(key, b), this.options.maxDelayMs);
      }
    });
  }

  /** Batches still gathering requests. */
  get openBatches(): number {
    return this.open.size;
  }

  /** Closes every open batch now (shutdown: nothing waits for a timer). */
  flush(): void {
    for (const [key, batch] of this.open) this.close(key, batch);
  }

  private close(key: string, batch: OpenBatch<I, O>): void {
    if (batch.timer) clearTimeout(batch.timer);
    if (this.open.get(key) === batch) this.open.delete(key);
    const { pending } = batch;
    let outputs: Promise<O[]>;
    try {
      outputs = this.run(
        key,
        pending.map((p) => p.item),
      );
    } catch (err) {
      outputs = Promise.reject(err);
    }
    outputs.then(
      (out) => {
        if (out.length !== pending.length) {
          const err = new Error(`a batch of ${pending.length} requests got ${out.length} outputs`);
          for (const p of pending) p.reject(err);
          return;
        }
        pending.forEach((p, i) => {
          p.resolve(out[i]);
        });
      },
      (err: unknown) => {
        for (const p of pending) p.reject(err);
      },
    );
  }
}
