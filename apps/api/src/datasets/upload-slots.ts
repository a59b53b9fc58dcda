import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { redisKey, tenantUnit, type RedisClient } from '@app/queue';
import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { REDIS } from '../infra/infra.module.js';

/**
 * KEYS[1]: the tenant's upload leases (a sorted set: lease id → expiry in ms). ARGV: lease id,
 * the cap, the lease's life. Expired leases (an API instance that died mid-upload) are dropped first.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`;

/** What a refused upload is told to wait: uploads end within seconds or at their timeout. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Caps the streamed uploads one tenant has in flight across every API instance
 * (`UPLOADS_PER_TENANT`), so that one tenant's slow or endless uploads cannot take the service's
 * memory, disk spool and parsing time from the others. Falls back to this instance's own count
 * while Redis is down.
 */
@Injectable()
export class UploadSlots {
  private readonly local = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {
    redis.defineCommand('aiaasAcquireUpload', { numberOfKeys: 1, lua: ACQUIRE });
  }

  /** Takes a slot or throws 429; the returned function gives it back (call it once, in a finally). */
  async acquire(tenantId: string): Promise<() => Promise<void>> {
    const key = redisKey(this.config, tenantUnit(tenantId), 'uploads');
    const lease = randomBytes(8).toString('hex');
    const cap = this.config.uploadsPerTenant;
    let granted: boolean;
    let viaRedis = true;
    try {
      const acquire = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<number>>).aiaasAcquireUpload;
      granted = (await acquire.call(this.redis, key, lease, cap, this.config.uploadTimeoutMs + 60_000)) === 1;
    } catch {
      viaRedis = false;
      const held = this.local.get(tenantId) ?? 0;
      granted = held < cap;
      if (granted) this.local.set(tenantId, held + 1);
    }
    if (!granted) {
      throw new ApiError(
        429,
        'rate_limit_error',
        'uploads_in_flight',
        `This tenant already has ${cap} uploads in progress (UPLOADS_PER_TENANT); retry when one has finished`,
        undefined,
        { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      );
    }
    return async () => {
      if (!viaRedis) {
        const left = (this.local.get(tenantId) ?? 1) - 1;
        if (left > 0) this.local.set(tenantId, left);
        else this.local.delete(tenantId);
        return;
      }
      // A lease Redis lost or cannot drop now expires by itself.
      await this.redis.zrem(key, lease).catch(() => undefined);
    };
  }
}
