import { APP_CONFIG, type AppConfig } from '@app/config';
import { type PredictPayload, PredictQueue, type PredictReply, predictRepliesChannel } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS_SUBSCRIBER } from '../infra/infra.module.js';

/** How often, and after how long, a waiting request is looked up in BullMQ in case its reply was missed. */
const CHECK_EVERY_MS = 1_000;

interface Waiter {
  checkedAt: number;
  settle: (reply: PredictReply | 'timeout') => void;
}

/**
 * How a sync prediction travels: out through the `predict` queue, back over this API instance's
 * reply channel (one subscription per instance, on the subscriber connection it already has; one
 * map of waiting requests). Waiting is a promise, never a blocked event loop. A reply lost on the
 * way (the subscriber reconnecting) is found in BullMQ instead: requests waiting for more than a
 * second are looked up there once a second.
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
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: Redis,
  ) {
    this.queue = new PredictQueue(config);
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
    this.checker = setInterval(() => void this.checkQueue(), CHECK_EVERY_MS);
    this.checker.unref();
    await this.subscriber.subscribe(this.channel).catch((err: Error) => this.log.warn(`cannot subscribe yet: ${err.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.checker);
    for (const w of this.waiting.values()) w.settle('timeout');
    await this.queue.close();
  }

  /**
   * Enqueues the request and waits up to `waitMs` for its reply: the reply, `timeout`, or
   * `unqueued` when the queue could not take it (Redis down).
   */
  async call(payload: PredictPayload, waitMs: number): Promise<PredictReply | 'timeout' | 'unqueued'> {
    const id = payload.jobId;
    // Waiting starts before the job exists, so that no reply can come before anyone listens.
    const reply = new Promise<PredictReply | 'timeout'>((resolve) => {
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
    return reply;
  }

  /** The fallback for missed messages: requests waiting for over a second, looked up in BullMQ. */
  private async checkQueue(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const now = Date.now();
      const due = [...this.waiting].filter(([, w]) => now - w.checkedAt >= CHECK_EVERY_MS);
      await Promise.all(
        due.map(async ([id, w]) => {
          w.checkedAt = now;
          const state = await this.queue.state(id).catch(() => null);
          // Lost (Redis forgot it): the wait runs out, the job row is written as queued, and the reconciler runs it.
          if (state && 'reply' in state) w.settle(state.reply);
        }),
      );
    } finally {
      this.checking = false;
    }
  }
}
