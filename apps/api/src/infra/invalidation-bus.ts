import { APP_CONFIG, type AppConfig } from '@app/config';
import { coalescingPublisher, invalidationChannel, type RedisClient } from '@app/queue';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { REDIS, REDIS_SUBSCRIBER } from './infra.module.js';

/** What changed, told to every API instance so that none serves it from a stale cache. */
export interface Invalidation {
  /** API keys (by hash) revoked or deleted */
  hashes?: string[];
  /** a tenant whose status, plan or quotas changed: every cached key of it */
  tenantId?: string;
  /** a tenant whose usage (storage, jobs, compute) changed */
  usageOf?: string;
  /** a model (id) whose versions or aliases changed, or that was deleted: its cached serving lookups */
  modelOf?: string;
}

type Listener = (change: Invalidation) => void;

/**
 * Redis pub/sub between API instances. A listener also hears `reset` when the subscription comes
 * back after a drop, since messages may have been missed meanwhile: it then forgets everything.
 */
@Injectable()
export class InvalidationBus implements OnModuleInit {
  private readonly logger = new Logger('invalidation');
  private readonly listeners: Array<{ onChange: Listener; onReset: () => void }> = [];
  private readonly channel: string;
  private readonly send: (channel: string, message: string) => Promise<void>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(REDIS) redis: RedisClient,
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: RedisClient,
  ) {
    this.channel = invalidationChannel(config);
    // Fifty submissions of a tenant in one turn invalidate its usage once.
    this.send = coalescingPublisher(redis);
  }

  listen(onChange: Listener, onReset: () => void): void {
    this.listeners.push({ onChange, onReset });
  }

  async onModuleInit(): Promise<void> {
    let connectedBefore = false;
    this.subscriber.on('ready', () => {
      if (connectedBefore) for (const l of this.listeners) l.onReset();
      connectedBefore = true;
    });
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const change = JSON.parse(message) as Invalidation;
      for (const l of this.listeners) l.onChange(change);
    });
    await this.subscriber.subscribe(this.channel).catch((err: Error) => this.logger.warn(`cannot subscribe yet: ${err.message}`));
  }

  /** Applies the change here at once, then tells the other instances. */
  async publish(change: Invalidation): Promise<void> {
    for (const l of this.listeners) l.onChange(change);
    await this.send(this.channel, JSON.stringify(change)).catch((err: Error) => {
      // Other instances fall back to their cache TTLs; say so, since revocation is then slower.
      this.logger.error(`could not publish an invalidation: ${err.message}`);
    });
  }
}
