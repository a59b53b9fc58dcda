import type { JobRepository } from '@app/db';
import type { Dispatched, JobQueues, JobType, Scheduler } from '@app/queue';
import type { Logger } from '@nestjs/common';
import type { Slots } from '../slots.js';

/**
 * Moves jobs from the fair scheduler to BullMQ as this worker has free slots, lane by lane
 * (compute: training and evaluation; inference): asks the scheduler for as many jobs as it can start (the scheduler takes a slot lease for each), and adds them to
 * BullMQ under their own ids (a double add is a no-op). One call at a time; a call asked for
 * meanwhile runs right after. New work wakes it over pub/sub; a timer asks too.
 */
export class Dispatcher {
  private dispatching = false;
  private again = false;
  stopped = false;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly queues: JobQueues,
    private readonly jobs: JobRepository,
    private readonly lanes: () => Array<{ slots: Slots; queues: string[] }>,
    private readonly log: Logger,
  ) {}

  async dispatch(): Promise<void> {
    if (this.stopped) return;
    if (this.dispatching) {
      this.again = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.again = false;
        for (const lane of this.lanes()) {
          const free = lane.slots.available - lane.slots.waiting;
          if (free <= 0 || lane.queues.length === 0) continue;
          const taken = await this.scheduler.dispatch(lane.queues, free);
          if (taken.length > 0) await this.toBull(taken);
        }
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.warn(`dispatch: ${(err as Error).message}`);
    } finally {
      this.dispatching = false;
    }
  }

  /** Dispatched jobs go to BullMQ (one read of their rows for all); one that stopped being queued meanwhile (canceled) gives its lease back. */
  private async toBull(taken: Dispatched[]): Promise<void> {
    const byId = await this.jobs.attemptsOf(taken.map((d) => d.jobId));
    await Promise.all(
      taken.map(async (d) => {
        const row = byId.get(d.jobId);
        if (row?.status !== 'queued') return this.scheduler.release(d.tenantId, d.jobId);
        const [type, accelerator] = d.queue.split('-') as [JobType, string | undefined];
        await this.queues.enqueue({
          id: d.jobId,
          tenantId: d.tenantId,
          type,
          accelerator: accelerator ?? null,
          maxAttempts: row.maxAttempts,
        });
      }),
    );
  }

  /** Leases of running jobs outlive a few missed renewals. */
  async renew(held: Array<{ tenantId: string; jobId: string }>): Promise<void> {
    await this.scheduler.renew(held).catch((err: Error) => this.log.warn(`lease renewal: ${err.message}`));
  }
}
