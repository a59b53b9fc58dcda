import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiError } from '@app/common';
import { loadConfig } from '@app/config';
import { createRedis, type RedisClient } from '@app/queue';
import { testPrincipal as principal } from './principal.fixture.js';
import { RateLimiter } from './rate-limiter.js';

// Against the real Redis of the test run (its own key prefix): the limiter is a Lua script.
const config = { ...loadConfig(), redisPrefix: `${process.env.REDIS_PREFIX ?? 'unit'}-rl` };
let redis: RedisClient;
let limiter: RateLimiter;

beforeAll(async () => {
  redis = createRedis(config, 'command');
  await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  limiter = new RateLimiter(config, redis);
});
afterAll(async () => {
  const keys = await redis.keys(`{${config.redisPrefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe('RateLimiter', () => {
  it('allows a full bucket, then refuses with Retry-After', async () => {
    const p = principal(`t${Date.now()}`, 3);
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) remaining.push((await limiter.take(p)).state.remaining);
    expect(remaining).toEqual([2, 1, 0]);
    const err = await limiter.take(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);
    // 3 per minute refills one token every 20 s.
    expect(Number((err as ApiError).headers['Retry-After'])).toBeGreaterThanOrEqual(19);
    expect(Number((err as ApiError).headers['Retry-After'])).toBeLessThanOrEqual(20);
  });

  it('refills continuously', async () => {
    const p = principal(`r${Date.now()}`, 600); // 10 tokens a second
    let refused: unknown;
    for (let i = 0; i < 1000 && !refused; i++)
      refused = await limiter.take(p).then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).toBeInstanceOf(ApiError);
    await new Promise((r) => setTimeout(r, 250));
    await expect(limiter.take(p)).resolves.toBeDefined();
  });

  it('takes from the tenant and the key bucket together or not at all', async () => {
    const id = `k${Date.now()}`;
    const narrow = principal(id, 10, 2);
    await limiter.take(narrow);
    await limiter.take(narrow);
    const refused = (await limiter.take(narrow).catch((e: unknown) => e)) as ApiError;
    expect(refused.code).toBe('key_requests_per_minute');
    // The refused request took nothing from the tenant: 8 left for another key.
    const other = { ...principal(id, 10), keyId: 'key_other' };
    expect((await limiter.take(other)).state.remaining).toBe(7);
  });

  it('counts allowed requests for the usage meter', async () => {
    const p = principal(`u${Date.now()}`, 100);
    for (let i = 0; i < 4; i++) await limiter.take(p);
    const day = new Date().toISOString().slice(0, 10);
    expect(await redis.hget(limiter.usageKeys(p.tenantId).pending, day)).toBe('4');
    expect(await redis.sismember(limiter.meteredKey, p.tenantId)).toBe(1);
    expect(limiter.takeCountedTenants().has(p.tenantId)).toBe(true);
    expect(limiter.takeCountedTenants().size).toBe(0);
  });
});
