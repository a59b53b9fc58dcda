import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { type PredictPayload, PredictQueue, type PredictReply, predictRepliesChannel, type RedisClient } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { REDIS, REDIS_SUBSCRIBER } from '../infra/infra.module.js';

/** How often, and after how long, a waiting request's job row is looked at in case its reply was missed. */
const CHECK_EVERY_MS = 1_000;

/** What a wait ends with: the worker's reply, its recorded row (the message was missed), or nothing in time. */
export type PredictOutcome = PredictReply | { recorded: true } | 'timeout' | 'unqueued';

interface Waiter {
  checkedAt: number;
  settle: (outcome: Exclude<PredictOutcome, 'unqueued'>) => void;
}

/**
 * How a sync prediction travels: out through the `predict` list (libs/queue PredictQueue), back
 * over this API instance's reply channel (one subscription per instance, on the subscriber
 * connection it already has; one map of waiting requests). Waiting is a promise, never a blocked
 * event loop. A reply lost on the way (the subscriber reconnecting) is found in the job row the
 * worker wrote before replying: requests waiting for more than a second are looked up in
 * PostgreSQL, all of them in one query, once a second.
 */
@Injectable()
export class PredictTransport implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('predict');
  private readonly queue: PredictQueue;
  private readonly waiting = new Map<string, Waiter>();
  private readonly channel: string;
  private checker: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) redis: RedisClient,
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: RedisClient,
    private readonly db: Database,
  ) {
    this.queue = new PredictQueue(config, redis);
    this.channel = predictRepliesChannel(config, config.instanceId);
  }

  /** Where workers send this instance's replies (the payload's `replyTo`). */
  get instanceId(): string {
    return this.config.instanceId;
  }

  async onModuleInit(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      for (const reply of JSON.parse(message) as PredictReply[]) this.waiting.get(reply.id)?.settle(reply);
    });
    this.checker = setInterval(() => void this.checkRows(), CHECK_EVERY_MS);
    this.checker.unref();
    await this.subscriber.subscribe(this.channel).catch((err: Error) => this.log.warn(`cannot subscribe yet: ${err.message}`));
  }

  onApplicationShutdown(): void {
    clearInterval(this.checker);
    for (const w of this.waiting.values()) w.settle('timeout');
  }

  /**
   * Enqueues the request and waits up to `waitMs` for its reply: the reply, `recorded` (the row
   * says it ended), `timeout`, or `unqueued` when the queue could not take it (Redis down).
   */
  async call(payload: PredictPayload, waitMs: number): Promise<PredictOutcome> {
    const id = payload.jobId;
    // Waiting starts before the request is queued, so that no reply can come before anyone listens.
    const outcome = new Promise<Exclude<PredictOutcome, 'unqueued'>>((resolve) => {
      const timer = setTimeout(() => waiter.settle('timeout'), waitMs);
      const waiter: Waiter = {
        checkedAt: Date.now(),
        settle: (r) => {
          clearTimeout(timer);
          if (this.waiting.get(id) === waiter) this.waiting.delete(id);
          resolve(r);
        },
      };
      this.waiting.set(id, waiter);
    });
    try {
      await this.queue.add(payload);
    } catch (err) {
      this.log.warn({ job_id: id, err: (err as Error).message }, 'predict queue unavailable');
      this.waiting.get(id)?.settle('timeout');
      return 'unqueued';
    }
    return outcome;
  }

  /** The fallback for missed messages: requests waiting for over a second whose job row has ended. */
  private async checkRows(): Promise<void> {
    if (this.checking) return;
    const now = Date.now();
    const due = [...this.waiting].filter(([, w]) => now - w.checkedAt >= CHECK_EVERY_MS);
    if (due.length === 0) return;
    this.checking = true;
    try {
      for (const [, w] of due) w.checkedAt = now;
      const { rows } = await this.db.pool.query<{ id: string }>(
        `SELECT id FROM jobs WHERE id = ANY($1) AND status IN ('succeeded', 'failed', 'canceled')`,
        [due.map(([id]) => id)],
      );
      for (const r of rows) this.waiting.get(r.id)?.settle({ recorded: true });
    } catch (err) {
      this.log.warn(`looking up waiting predictions: ${(err as Error).message}`);
    } finally {
      this.checking = false;
    }
  }
}
