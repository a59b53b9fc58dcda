import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, onlineWorkerCount } from '@app/db';
import { type FoundationPayload, FoundationQueue, type FoundationReply, foundationRepliesChannel, type RedisClient } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { REDIS, REDIS_SUBSCRIBER } from '../infra/infra.module.js';

/** How long a request waits for a worker's answer before it is a 503. */
const REPLY_TIMEOUT_MS = 30_000;
/** How long "some worker is online" is trusted before PostgreSQL is asked again. */
const ONLINE_CHECK_MS = 2_000;
const RETRY_AFTER_S = '5';

/**
 * How a foundation-model request travels: out on the `foundation` list (libs/queue
 * FoundationQueue), back over this instance's reply channel. Waiting is a promise; a request
 * no worker answers in time is a 503 (nothing was stored, so a retry is always safe).
 */
@Injectable()
export class FoundationTransport implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('foundation');
  private readonly queue: FoundationQueue;
  private readonly channel: string;
  private readonly waiting = new Map<string, (reply: FoundationReply | null) => void>();
  private online: { at: number; yes: Promise<boolean> } | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) redis: RedisClient,
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: RedisClient,
    private readonly db: Database,
  ) {
    this.queue = new FoundationQueue(config, redis);
    this.channel = foundationRepliesChannel(config, config.instanceId);
  }

  async onModuleInit(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      for (const reply of JSON.parse(message) as FoundationReply[]) this.waiting.get(reply.id)?.(reply);
    });
    await this.subscriber.subscribe(this.channel).catch((err: Error) => this.log.warn(`cannot subscribe yet: ${err.message}`));
  }

  onApplicationShutdown(): void {
    for (const settle of this.waiting.values()) settle(null);
  }

  /** The worker's reply for these inputs; throws 503 when no worker can answer. */
  async call(tenantId: string, model: string, op: FoundationPayload['op'], inputs: string[]): Promise<FoundationReply> {
    if (!(await this.workersOnline())) throw unavailable('No worker is online to run the model; retry shortly');
    const id = `fm_${randomBytes(9).toString('base64url')}`;
    const reply = new Promise<FoundationReply | null>((resolve) => {
      const timer = setTimeout(() => settle(null), REPLY_TIMEOUT_MS);
      const settle = (r: FoundationReply | null) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(r);
      };
      this.waiting.set(id, settle);
    });
    try {
      await this.queue.add({ id, tenantId, model, op, inputs, replyTo: this.config.instanceId, deadline: Date.now() + REPLY_TIMEOUT_MS });
    } catch (err) {
      this.waiting.get(id)?.(null);
      this.log.warn(`foundation queue unavailable: ${(err as Error).message}`);
      throw unavailable('The request queue is unavailable; retry shortly');
    }
    const r = await reply;
    if (!r) throw unavailable(`No worker answered within ${REPLY_TIMEOUT_MS / 1000} s; retry shortly`);
    return r;
  }

  private workersOnline(): Promise<boolean> {
    const now = Date.now();
    if (!this.online || now - this.online.at > ONLINE_CHECK_MS) {
      const yes = onlineWorkerCount(this.db).then((n) => n > 0);
      // A failed look is not cached: the next request asks again.
      yes.catch(() => (this.online = null));
      this.online = { at: now, yes };
    }
    return this.online.yes.catch(() => {
      throw ApiError.unavailable('database_unavailable', 'Cannot reach the database right now; retry shortly');
    });
  }
}

function unavailable(message: string): ApiError {
  return new ApiError(503, 'api_error', 'no_worker_available', message, undefined, { 'Retry-After': RETRY_AFTER_S });
}
