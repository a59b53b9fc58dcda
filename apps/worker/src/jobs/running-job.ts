/** setTimeout's longest delay; a later deadline is re-armed on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type StopReason = 'cancel' | 'shutdown' | 'deadline';

/** A job this worker is running: how to stop it, and why it was stopped. */
export class RunningJob {
  readonly controller = new AbortController();
  reason: StopReason | null = null;
  /** Whether it holds a slot lease in the scheduler (released when the job lets go of its slot). */
  leased = false;
  /** The tenant's max_job_seconds, once the job has started under it. */
  limitSeconds: number | null = null;
  private timer?: NodeJS.Timeout;

  constructor(readonly tenantId: string) {}

  abort(reason: StopReason): void {
    this.reason ??= reason;
    this.controller.abort();
  }

  /** Stops the job at `at` (epoch ms), or at once when that has passed (a retry past its deadline). */
  stopAt(at: number): void {
    const left = at - Date.now();
    if (left <= 0) return this.abort('deadline');
    this.timer = setTimeout(() => this.stopAt(at), Math.min(left, MAX_TIMER_MS));
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
