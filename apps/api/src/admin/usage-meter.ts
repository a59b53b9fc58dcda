import { APP_CONFIG, type AppConfig } from '@app/config';
import { type UsageIncrement, UsageRepository } from '@app/db';
import { redisKey } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiter } from '../auth/rate-limiter.js';
import { REDIS } from '../infra/infra.module.js';

const FLUSH_EVERY_MS = 5_000;

/**
 * Moves the request counts that the rate limiter adds up in Redis into PostgreSQL's usage
 * counters. The pending hash is renamed away atomically first, so no count is read twice; if the
 * database write fails the counts are added back.
 */
@Injectable()
export class UsageMeter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('usage');
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly rateLimiter: RateLimiter,
    private readonly usage: UsageRepository,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  async flush(): Promise<void> {
    await this.flushLocal();
    const batch = redisKey(this.config, 'usage', 'flushing', this.config.instanceId);
    try {
      const moved = (await this.redis.eval(
        `if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then redis.call('RENAME', KEYS[1], KEYS[2]) end
         return redis.call('HGETALL', KEYS[2])`,
        2,
        this.rateLimiter.usageKey,
        batch,
      )) as string[];
      if (moved.length === 0) return;
      const increments: UsageIncrement[] = [];
      for (let i = 0; i < moved.length; i += 2) {
        const [tenantId, day] = moved[i].split('|');
        increments.push({ tenantId, day, metric: 'requests', value: Number(moved[i + 1]) });
      }
      await this.usage.add(increments);
      await this.redis.del(batch);
    } catch (err) {
      this.logger.warn(`usage flush postponed: ${(err as Error).message}`);
    }
  }

  /** Requests counted in memory while Redis was down go straight to PostgreSQL. */
  private async flushLocal(): Promise<void> {
    const counts = this.rateLimiter.localCounts;
    if (counts.size === 0) return;
    const increments: UsageIncrement[] = [...counts].map(([field, value]) => {
      const [tenantId, day] = field.split('|');
      return { tenantId, day, metric: 'requests', value };
    });
    counts.clear();
    try {
      await this.usage.add(increments);
    } catch (err) {
      for (const i of increments) counts.set(`${i.tenantId}|${i.day}`, (counts.get(`${i.tenantId}|${i.day}`) ?? 0) + i.value);
      this.logger.warn(`usage flush postponed: ${(err as Error).message}`);
    }
  }
}
