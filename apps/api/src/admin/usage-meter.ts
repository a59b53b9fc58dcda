import { APP_CONFIG, type AppConfig } from '@app/config';
import { type UsageIncrement, UsageRepository } from '@app/db';
import type { RedisClient } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RateLimiter, type UsageKeys } from '../auth/rate-limiter.js';
import { REDIS } from '../infra/infra.module.js';

const FLUSH_EVERY_MS = 5_000;
/** How long a flusher owns a tenant's batch: another instance takes it over after this (the owner died mid-flush). */
const OWNER_MS = 60_000;

/**
 * Claims a tenant's batch of counts: renames the pending hash away (no count is read twice), unless
 * an earlier batch is still being flushed, and returns its fields. Nothing when another live
 * instance owns the batch. KEYS: pending, flushing, owner (one tenant's unit).
 */
const CLAIM = `
local owner = redis.call('GET', KEYS[3])
if owner and owner ~= ARGV[1] then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return redis.call('HGETALL', KEYS[2])
`;

/** Ends a flushed batch; returns 1 when new counts arrived meanwhile (the tenant stays in the metered set). */
const DONE = `
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[2], KEYS[3]) end
return redis.call('EXISTS', KEYS[1])
`;

interface UsageScripts {
  aiaasUsageClaim(pending: string, flushing: string, owner: string, me: string, ownerMs: number): Promise<string[] | null>;
  aiaasUsageDone(pending: string, flushing: string, owner: string, me: string): Promise<number>;
}

/**
 * Moves the request counts that the rate limiter adds up in Redis (one hash per tenant, in the
 * tenant's slot) into PostgreSQL's usage counters. Each flush takes the tenants this instance
 * counted plus the metered set (tenants whose counting instance may have died), claims each
 * tenant's batch atomically, writes them all in one statement, then ends the batches. If the
 * database write fails the batches stay claimed and the next flush writes them again.
 */
@Injectable()
export class UsageMeter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('usage');
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly rateLimiter: RateLimiter,
    private readonly usage: UsageRepository,
  ) {
    redis.defineCommand('aiaasUsageClaim', { numberOfKeys: 3, lua: CLAIM });
    redis.defineCommand('aiaasUsageDone', { numberOfKeys: 3, lua: DONE });
  }

  private get scripts(): UsageScripts {
    return this.redis as unknown as UsageScripts;
  }

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
    const tenants = this.rateLimiter.takeCountedTenants();
    const me = this.config.instanceId;
    try {
      for (const t of await this.redis.smembers(this.rateLimiter.meteredKey)) tenants.add(t);
      if (tenants.size === 0) return;
      const claimed: Array<{ tenantId: string; keys: UsageKeys }> = [];
      const increments: UsageIncrement[] = [];
      await Promise.all(
        [...tenants].map(async (tenantId) => {
          const keys = this.rateLimiter.usageKeys(tenantId);
          const fields = await this.scripts.aiaasUsageClaim(keys.pending, keys.flushing, keys.owner, me, OWNER_MS);
          if (!fields) return;
          claimed.push({ tenantId, keys });
          for (let i = 0; i < fields.length; i += 2)
            increments.push({ tenantId, day: fields[i], metric: 'requests', value: Number(fields[i + 1]) });
        }),
      );
      if (increments.length > 0) await this.usage.add(increments);
      const settled = await Promise.all(
        claimed.map(async ({ tenantId, keys }) => ({
          tenantId,
          more: (await this.scripts.aiaasUsageDone(keys.pending, keys.flushing, keys.owner, me)) === 1,
        })),
      );
      const idle = settled.filter((s) => !s.more).map((s) => s.tenantId);
      if (idle.length > 0) await this.redis.srem(this.rateLimiter.meteredKey, ...idle);
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
