export interface BatchQueueOptions {
  /** How long a batch waits for more after its first item when it could be written at once; 0: until the end of the event-loop turn. */
  windowMs: number;
  /** A batch closes at this many items. */
  maxBatch: number;
  /** …or at this many bytes of the items' `json` (one larger than this is a batch of its own). */
  maxBatchBytes: number;
  /** Batches written at once. */
  concurrency: number;
}

interface Pending<In, Out> {
  item: In;
  resolve: (a: Out) => void;
  reject: (err: unknown) => void;
}

/**
 * Groups items (job submissions, the reads that validate them) into batches, apart from the
 * database (`write` handles one batch and answers for each of its items, in order). The items
 * that arrive while `concurrency` batches are being written wait, and form the next batch as soon
 * as one is done: under load, batches grow with the load by themselves; a lone item, with nothing
 * being written, goes at the end of the event-loop turn (or `windowMs` later). Batches keep the
 * order of arrival.
 *
 * When a batch fails, every item of it fails with the error if the database is unavailable (or
 * the batch was one item): that is the answer each would have had alone. Any other error may be
 * one item's fault (a value PostgreSQL refused): each is then written alone, so that each gets its
 * own answer, and one bad item does not fail the others.
 */
export class BatchQueue<In extends { json: string }, Out> {
  private pending: Array<Pending<In, Out>> = [];
  private pendingBytes = 0;
  private writing = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private idle: Array<() => void> = [];

  constructor(
    private readonly options: BatchQueueOptions,
    private readonly write: (batch: In[]) => Promise<Out[]>,
    private readonly unavailable: (err: unknown) => boolean,
    private readonly onSplit: (err: unknown, size: number) => void = () => undefined,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.pendingBytes += item.json.length;
      this.pump(false);
    });
  }

  /** Items not yet in a batch being written, and batches being written. */
  get waiting(): { pending: number; writing: number } {
    return { pending: this.pending.length, writing: this.writing };
  }

  /** Writes whatever waits now, and resolves once nothing is pending or being written (shutdown). */
  async drain(): Promise<void> {
    this.pump(true);
    if (this.pending.length === 0 && this.writing === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Starts the batches that may start: all that wait when `due` (they waited already), else only full ones. */
  private pump(due: boolean): void {
    while (this.writing < this.options.concurrency && this.pending.length > 0) {
      const full = this.pending.length >= this.options.maxBatch || this.pendingBytes >= this.options.maxBatchBytes;
      if (!due && !full) {
        this.arm();
        return;
      }
      this.disarm();
      void this.start(this.take());
    }
  }

  private arm(): void {
    if (this.timer !== null) return;
    const fire = () => {
      this.timer = null;
      this.pump(true);
    };
    this.timer = this.options.windowMs > 0 ? setTimeout(fire, this.options.windowMs) : setImmediate(fire);
  }

  private disarm(): void {
    if (this.timer === null) return;
    if (this.options.windowMs > 0) clearTimeout(this.timer as NodeJS.Timeout);
    else clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = null;
  }

  /** The oldest items, up to maxBatch and maxBatchBytes (at least one). */
  private take(): Array<Pending<In, Out>> {
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < this.options.maxBatch) {
      const size = this.pending[n].item.json.length;
      if (n > 0 && bytes + size > this.options.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    this.pendingBytes -= bytes;
    return this.pending.splice(0, n);
  }

  private async start(batch: Array<Pending<In, Out>>): Promise<void> {
    this.writing++;
    let settle = () => {};
    try {
      settle = await this.run(batch);
    } finally {
      this.writing--;
      // The next batch goes to the database before this one's answers are handed out: the rest of
      // each of their requests, run first, would hold it back by as much.
      this.pump(true);
      settle();
      if (this.writing === 0 && this.pending.length === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Writes the batch; answers how to hand out its answers (failures are handed out at once). */
  private async run(batch: Array<Pending<In, Out>>): Promise<() => void> {
    let answers: Out[];
    try {
      answers = await this.write(batch.map((p) => p.item));
      if (answers.length !== batch.length) throw new Error(`a batch of ${batch.length} items got ${answers.length} answers`);
    } catch (err) {
      if (batch.length === 1 || this.unavailable(err)) {
        for (const p of batch) p.reject(err);
        return () => {};
      }
      this.onSplit(err, batch.length);
      for (const p of batch) {
        try {
          const [answer] = await this.write([p.item]);
          if (answer === undefined) throw new Error('an item written alone got no answer');
          p.resolve(answer);
        } catch (e) {
          p.reject(e);
        }
      }
      return () => {};
    }
    return () => {
      batch.forEach((p, i) => {
        p.resolve(answers[i]);
      });
    };
  }
}
