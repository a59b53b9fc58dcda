import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { type RedisClient, redisKey, tenantUnit } from '@app/queue';
import { Inject, Injectable } from '@nestjs/common';
import { REDIS } from '../infra/infra.module.js';
import type { RateState, TenantPrincipal } from './principal.js';

/**
 * Two token buckets (the tenant's, and the key's when it has its own limit) refilled continuously
 * over a 60 s window, taken together or not at all, plus the request meter (a hash of counts by
 * day): one round trip. All three keys are the tenant's unit, so on a cluster one slot holds them
 * and tenants spread over the slots. Redis's clock is used so that every API instance agrees.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[3])
local function peek(key, cap)
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(b[1])
  if tokens == nil then return cap end
  return math.min(cap, tokens + (now - tonumber(b[2])) * cap / window)
end
local caps = { tonumber(ARGV[1]), tonumber(ARGV[2]) }
local levels = { peek(KEYS[1], caps[1]), caps[2] > 0 and peek(KEYS[2], caps[2]) or nil }
local allowed = levels[1] >= 1 and (levels[2] == nil or levels[2] >= 1)
-- the bucket that binds: the one with fewer whole tokens left
local b = 1
if levels[2] ~= nil and levels[2] < levels[1] then b = 2 end
if allowed then
  for i = 1, 2 do
    if levels[i] ~= nil then
      levels[i] = levels[i] - 1
      redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i]), 'ts', now)
      redis.call('PEXPIRE', KEYS[i], window * 2)
    end
  end
  redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
end
local rate = caps[b] / window
local full_ms = math.ceil((caps[b] - levels[b]) / rate)
local retry_ms = allowed and 0 or math.ceil((1 - levels[b]) / rate)
return { allowed and 1 or 0, b, caps[b], math.floor(levels[b]), full_ms, retry_ms }
`;

const WINDOW_SECONDS = 60;

/** The Redis keys of one tenant's request meter: counts by day waiting, and the batch being flushed (see UsageMeter). */
export interface UsageKeys {
  pending: string;
  flushing: string;
  owner: string;
}

@Injectable()
export class RateLimiter {
  /** Tenants counted in Redis since the UsageMeter last asked (takeCountedTenants). */
  private counted = new Set<string>();
  /** The set of tenants whose meters may hold counts, for a flusher other than the instance that counted them. */
  readonly meteredKey: string;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {
    redis.defineCommand('aiaasTakeTokens', { numberOfKeys: 3, lua: TAKE });
    this.meteredKey = redisKey(config, 'usage', 'metered');
  }

  usageKeys(tenantId: string): UsageKeys {
    const pending = this.pendingUsageKey(tenantId);
    return { pending, flushing: `${pending}:flushing`, owner: `${pending}:owner` };
  }

  /** The hash of a tenant's counts by day that the TAKE script adds to. */
  private pendingUsageKey(tenantId: string): string {
    return redisKey(this.config, tenantUnit(tenantId), 'usage');
  }

  /** The tenants this instance counted in Redis since the last call. */
  takeCountedTenants(): Set<string> {
    const out = this.counted;
    this.counted = new Set();
    return out;
  }

  /** Per-instance buckets and request counts used while Redis does not answer (see `take`). */
  private readonly local = new Map<string, { tokens: number; ts: number }>();
  readonly localCounts = new Map<string, number>();

  private takeLocally(tenantId: string, cap: number, day: string): number[] {
    const now = Date.now();
    const window = WINDOW_SECONDS * 1000;
    const b = this.local.get(tenantId) ?? { tokens: cap, ts: now };
    b.tokens = Math.min(cap, b.tokens + ((now - b.ts) * cap) / window);
    b.ts = now;
    const allowed = b.tokens >= 1;
    if (allowed) {
      b.tokens -= 1;
      const field = `${tenantId}|${day}`;
      this.localCounts.set(field, (this.localCounts.get(field) ?? 0) + 1);
    }
    this.local.set(tenantId, b);
    const rate = cap / window;
    return [
      allowed ? 1 : 0,
      1,
      cap,
      Math.floor(b.tokens),
      Math.ceil((cap - b.tokens) / rate),
      allowed ? 0 : Math.ceil((1 - b.tokens) / rate),
    ];
  }

  /** Takes a token for this request; throws 429 with Retry-After when either bucket is empty. */
  async take(p: TenantPrincipal): Promise<{ state: RateState; headers: Record<string, string> }> {
    const tenantLimit = p.quotas.requests_per_minute;
    const keyLimit = p.keyRateLimit !== null && p.keyRateLimit < tenantLimit ? p.keyRateLimit : 0;
    const day = new Date().toISOString().slice(0, 10);
    const unit = tenantUnit(p.tenantId);
    let reply: number[];
    try {
      reply = await (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<number[]>>).aiaasTakeTokens(
        redisKey(this.config, unit, 'rl'),
        redisKey(this.config, unit, 'rl', 'key', p.keyId),
        this.pendingUsageKey(p.tenantId),
        tenantLimit,
        keyLimit,
        WINDOW_SECONDS * 1000,
        day,
      );
      if (reply[0] === 1 && !this.counted.has(p.tenantId)) {
        // Once per tenant and flush interval: names the tenant for whichever instance flushes next.
        this.counted.add(p.tenantId);
        void this.redis.sadd(this.meteredKey, p.tenantId).catch(() => undefined);
      }
    } catch {
      // Redis is down: limit with this instance's own buckets rather than refuse everything, so
      // the API keeps serving (and accepting jobs it can commit to PostgreSQL) through the outage.
      reply = this.takeLocally(p.tenantId, tenantLimit, day);
    }
    const [allowed, bucket, limit, remaining, fullMs, retryMs] = reply;
    const policyName = bucket === 2 ? 'key' : 'requests';
    const policies = [`"requests";q=${tenantLimit};w=${WINDOW_SECONDS}`];
    if (keyLimit > 0) policies.push(`"key";q=${keyLimit};w=${WINDOW_SECONDS}`);
    const resetSeconds = Math.max(1, Math.ceil(fullMs / 1000));
    const headers: Record<string, string> = {
      'RateLimit-Policy': policies.join(', '),
      RateLimit: `"${policyName}";r=${Math.max(0, remaining)};t=${resetSeconds}`,
    };
    if (!allowed) {
      const retryAfter = String(Math.max(1, Math.ceil(retryMs / 1000)));
      throw new ApiError(
        429,
        'rate_limit_error',
        keyLimit > 0 && bucket === 2 ? 'key_requests_per_minute' : 'requests_per_minute',
        `Too many requests: the ${bucket === 2 ? 'key' : 'tenant'} limit is ${limit} per minute; retry after ${retryAfter} s`,
        undefined,
        { ...headers, 'Retry-After': retryAfter },
      );
    }
    return { state: { limit, remaining: Math.max(0, remaining), resetSeconds }, headers };
  }
}
