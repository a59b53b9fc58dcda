import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { redisKey, tenantUnit, type RedisClient } from '@app/queue';
import { Inject, Injectable } from '@nestjs/common';
import { REDIS } from '../infra/infra.module.js';
import type { TenantPrincipal } from '../auth/principal.js';

/**
 * KEYS[1]: the tenant's hash of records claimed per hour (field: hours since the epoch).
 * ARGV[1]: the cap, ARGV[2]: the records' lifetime in hours, ARGV[3]: +1 to claim, -1 to give one back.
 * Hours whose records have all expired are dropped. Answers {1, 0} when claimed (or given back),
 * {0, seconds until the oldest kept hour expires} when the cap is reached.
 */
const TAKE = `
local now = tonumber(redis.call('TIME')[1])
local hour = math.floor(now / 3600)
local ttl = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
local total, oldest = 0, hour
for i = 1, #fields, 2 do
  local h = tonumber(fields[i])
  if h < hour - ttl then redis.call('HDEL', KEYS[1], fields[i])
  else
    total = total + tonumber(fields[i + 1])
    if h < oldest then oldest = h end
  end
end
local delta = tonumber(ARGV[3])
if delta > 0 and total >= tonumber(ARGV[1]) then return { 0, (oldest + ttl + 1) * 3600 - now } end
redis.call('HINCRBY', KEYS[1], tostring(hour), delta)
redis.call('EXPIRE', KEYS[1], (ttl + 1) * 3600)
return { 1, 0 }
`;

type Script = { aiaasIdempotencyTake(key: string, cap: number, ttlHours: number, delta: number): Promise<[number, number]> };

/**
 * max_idempotency_records: the records a tenant's keys claimed within their lifetime (hour buckets,
 * so it may count an expired record for up to an hour longer). In Redis, one round trip per first
 * request, never per replay; if Redis does not answer, the cap is not enforced meanwhile.
 */
@Injectable()
export class IdempotencyQuota {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {
    redis.defineCommand('aiaasIdempotencyTake', { numberOfKeys: 1, lua: TAKE });
  }

  /** Counts one new record, or throws 429 `max_idempotency_records` when the tenant has its cap. */
  async take(p: TenantPrincipal): Promise<void> {
    const cap = p.quotas.max_idempotency_records;
    const reply = await this.script
      .aiaasIdempotencyTake(this.keyOf(p.tenantId), cap, this.config.idempotencyTtlHours, 1)
      .catch(() => [1, 0] as const);
    if (reply[0] === 1) return;
    throw new ApiError(
      429,
      'quota_exceeded_error',
      'max_idempotency_records',
      `The tenant has ${cap} idempotency records kept (its max_idempotency_records); retry later, or send this request without Idempotency-Key`,
      'Idempotency-Key',
      { 'Retry-After': String(Math.max(1, reply[1])) },
    );
  }

  /** A record released again (its request failed with a 5xx, or was refused by this quota). */
  giveBack(p: TenantPrincipal): void {
    this.script.aiaasIdempotencyTake(this.keyOf(p.tenantId), 0, this.config.idempotencyTtlHours, -1).catch(() => undefined);
  }

  private get script(): Script {
    return this.redis as unknown as Script;
  }

  private keyOf(tenantId: string): string {
    return redisKey(this.config, tenantUnit(tenantId), 'idempotency');
  }
}
