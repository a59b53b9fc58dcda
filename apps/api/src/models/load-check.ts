import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, type LoadCheckOutcome, onlineWorkerCount, StagedImportRepository } from '@app/db';
import { LoadCheckQueue, type LoadCheckReply, loadCheckRepliesChannel, type RedisClient } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { REDIS, REDIS_SUBSCRIBER } from '../infra/infra.module.js';

/** What a client is told to wait before it tries an import again when no worker could check it. */
const RETRY_AFTER_S = '30';

/**
 * An imported model is loaded once by a worker before it becomes a version (the API has no
 * TF.js): the artifact is staged in PostgreSQL, its id goes out on the load-check list, and the
 * worker's verdict comes back on this instance's reply channel (or, if that message is missed,
 * from the staged row). Whatever the verdict, the staged artifact is discarded before the answer.
 * No worker in time is a 503 with Retry-After: an import never becomes visible unchecked.
 */
@Injectable()
export class LoadCheckClient implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('load-check');
  private readonly queue: LoadCheckQueue;
  private readonly staged: StagedImportRepository;
  private readonly channel: string;
  private readonly waiting = new Map<string, (reply: LoadCheckReply | null) => void>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) redis: RedisClient,
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: RedisClient,
    private readonly db: Database,
  ) {
    this.queue = new LoadCheckQueue(config, redis);
    this.staged = new StagedImportRepository(db);
    this.channel = loadCheckRepliesChannel(config, config.instanceId);
  }

  async onModuleInit(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const reply = JSON.parse(message) as LoadCheckReply;
      this.waiting.get(reply.id)?.(reply);
    });
    await this.subscriber.subscribe(this.channel).catch((err: Error) => this.log.warn(`cannot subscribe yet: ${err.message}`));
  }

  onApplicationShutdown(): void {
    for (const settle of this.waiting.values()) settle(null);
  }

  /** Resolves when a worker loaded the artifact and predicted with it; otherwise throws the 4xx or 503 to answer. */
  async verify(tenantId: string, modelId: string, artifact: Buffer): Promise<void> {
    await this.requireWorker();
    const windowMs = 2 * this.config.importCheckTimeoutMs;
    const id = await this.staged.stage(tenantId, modelId, artifact, this.config.importChecksPerTenant, windowMs);
    if (!id) {
      throw new ApiError(
        429,
        'rate_limit_error',
        'import_checks_in_flight',
        `This tenant already has ${this.config.importChecksPerTenant} imports being checked; retry when they are answered`,
        undefined,
        {
          'Retry-After': '5',
        },
      );
    }
    try {
      const outcome = await this.wait(id, tenantId);
      if (!outcome)
        throw noWorker(`No worker loaded the model within ${this.config.importCheckTimeoutMs / 1000} s; nothing was stored, retry later`);
      if (outcome.ok) return;
      if (outcome.error.code === 'model_invalid')
        throw ApiError.invalid('model_invalid', `The model cannot be served: ${outcome.error.message}`, 'model');
      throw noWorker(`The load check did not finish (${outcome.error.code}: ${outcome.error.message}); nothing was stored, retry later`);
    } finally {
      await this.staged.discard(tenantId, id).catch((err: Error) => this.log.warn(`discarding staged import ${id}: ${err.message}`));
    }
  }

  /** Fails fast when no worker has heartbeated lately: the check would only time out. */
  private async requireWorker(): Promise<void> {
    if ((await onlineWorkerCount(this.db)) === 0)
      throw noWorker('No worker is online to load the model before it becomes a version; nothing was stored, retry later');
  }

  /** The worker's verdict, from its reply or (a missed message) the staged row; null when none came in time. */
  private async wait(id: string, tenantId: string): Promise<LoadCheckOutcome | null> {
    const reply = new Promise<LoadCheckReply | null>((resolve) => {
      const timer = setTimeout(() => settle(null), this.config.importCheckTimeoutMs);
      const settle = (r: LoadCheckReply | null) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(r);
      };
      this.waiting.set(id, settle);
    });
    try {
      await this.queue.add({ id, tenantId, replyTo: this.config.instanceId });
    } catch (err) {
      this.waiting.get(id)?.(null);
      this.log.warn(`load-check queue unavailable: ${(err as Error).message}`);
      throw noWorker('The load-check queue is unavailable; nothing was stored, retry later');
    }
    const r = await reply;
    if (r) return r.ok ? { ok: true } : { ok: false, error: r.error ?? { code: 'internal_error', message: 'no reason given' } };
    return this.staged.outcome(tenantId, id).catch(() => null);
  }
}

function noWorker(message: string): ApiError {
  return new ApiError(503, 'api_error', 'no_worker_available', message, undefined, { 'Retry-After': RETRY_AFTER_S });
}
