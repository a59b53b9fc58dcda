/** A counting semaphore: the worker's compute slots (one per child process), shared by every queue it consumes. */
export class Slots {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly size: number,
    private readonly onChange: (free: number) => void = () => undefined,
  ) {
    this.free = size;
  }

  get available(): number {
    return this.free;
  }

  /** Jobs fetched from BullMQ that wait for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.onChange(this.free);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
      this.onChange(this.free);
    };
  }
}
