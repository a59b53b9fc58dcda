import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '@app/config';
import type { UsageIncrement, UsageRepository } from '@app/db';
import { createRedis, type RedisClient } from '@app/queue';
import { testPrincipal } from '../auth/principal.fixture.js';
import { RateLimiter } from '../auth/rate-limiter.js';
import { UsageMeter } from './usage-meter.js';

// Against the real Redis of the test run (a prefix of its own); PostgreSQL is stubbed by a
// repository that records what it was asked to add (or fails when told to).
const config = { ...loadConfig(), redisPrefix: `${process.env.REDIS_PREFIX ?? 'unit'}-usage-${process.pid}` };
let redis: RedisClient;

class RecordingUsage {
  added: UsageIncrement[] = [];
  failNext = false;
  async add(increments: UsageIncrement[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('database down');
    }
    this.added.push(...increments);
  }
  total(tenantId: string): number {
    return this.added.filter((i) => i.tenantId === tenantId).reduce((s, i) => s + i.value, 0);
  }
}

/** One API instance: its own limiter and meter, sharing Redis with the others. */
function instance(instanceId: string, usage: RecordingUsage) {
  const c = { ...config, instanceId };
  const limiter = new RateLimiter(c, redis);
  return { limiter, meter: new UsageMeter(c, redis, limiter, usage as unknown as UsageRepository) };
}

beforeAll(async () => {
  redis = createRedis(config, 'command');
  await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
});
afterAll(async () => {
  const keys = await (redis as unknown as { keys(p: string): Promise<string[]> }).keys(`{${config.redisPrefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe('UsageMeter', () => {
  it('moves every counted request to PostgreSQL exactly once, whichever instance flushes', async () => {
    const usage = new RecordingUsage();
    const a = instance('a', usage);
    const b = instance('b', usage);
    const t = `ten_${Date.now()}`;
    for (let i = 0; i < 5; i++) await a.limiter.take(testPrincipal(t, 1_000));
    for (let i = 0; i < 3; i++) await b.limiter.take(testPrincipal(t, 1_000));
    await Promise.all([a.meter.flush(), b.meter.flush()]);
    expect(usage.total(t)).toBe(8);
    await Promise.all([a.meter.flush(), b.meter.flush()]);
    expect(usage.total(t)).toBe(8);
    expect(await redis.sismember(a.limiter.meteredKey, t)).toBe(0);
  });

  it('keeps a batch whose write failed and writes it on the next flush', async () => {
    const usage = new RecordingUsage();
    const a = instance('a2', usage);
    const t = `ten_f${Date.now()}`;
    for (let i = 0; i < 4; i++) await a.limiter.take(testPrincipal(t, 1_000));
    usage.failNext = true;
    await a.meter.flush();
    expect(usage.total(t)).toBe(0);
    // Counted meanwhile: stays pending beside the claimed batch, and both arrive.
    await a.limiter.take(testPrincipal(t, 1_000));
    await a.meter.flush();
    await a.meter.flush();
    expect(usage.total(t)).toBe(5);
  });

  it('flushes counts left by an instance that died, once its claim runs out', async () => {
    const usage = new RecordingUsage();
    const dead = instance('dead', usage);
    const t = `ten_d${Date.now()}`;
    for (let i = 0; i < 2; i++) await dead.limiter.take(testPrincipal(t, 1_000));
    // The dead instance claimed a batch and never finished it.
    usage.failNext = true;
    await dead.meter.flush();
    const keys = dead.limiter.usageKeys(t);
    expect(await redis.exists(keys.flushing)).toBe(1);
    const other = instance('other', usage);
    await other.meter.flush();
    expect(usage.total(t)).toBe(0); // still the dead instance's claim
    await redis.pexpire(keys.owner, 1); // its claim runs out
    while (await redis.exists(keys.owner)) await new Promise((r) => setImmediate(r));
    await other.meter.flush();
    expect(usage.total(t)).toBe(2);
    expect(await redis.exists(keys.flushing)).toBe(0);
  });
});
