import { afterAll, describe, expect, it } from '@jest/globals';
import { adminKey, createTenant, sleep } from '../support/factories.js';
import { Api } from '../support/http.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { PrivateRedis } from '../support/redis-server.js';

const started: RunningApi[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

describe('two API instances', () => {
  it('refuses a revoked key within one second on every instance, without a database read per request', async () => {
    const [a, b] = await Promise.all([startApi(), startApi()]);
    started.push(a, b);
    const t = await createTenant(a.url);
    const extra = await t.api.post('/v1/api-keys', { name: 'to-revoke' });
    const onA = new Api(a.url, extra.body.secret);
    const onB = new Api(b.url, extra.body.secret);
    // Both instances now hold the key in their caches.
    expect((await onA.get('/v1/me')).status).toBe(200);
    expect((await onB.get('/v1/me')).status).toBe(200);

    const dbLookups = async () =>
      Number(
        /aiaas_api_key_lookups_total\{source="database"\} (\d+)/.exec((await new Api(b.url, adminKey()).get('/metrics')).text)?.[1] ?? 0,
      );
    const before = await dbLookups();
    for (let i = 0; i < 20; i++) expect((await onB.get('/v1/me')).status).toBe(200);
    expect(await dbLookups()).toBe(before);

    const revokedAt = Date.now();
    expect((await t.api.delete(`/v1/api-keys/${extra.body.id}`)).status).toBe(200);
    let refusedAfter = -1;
    while (Date.now() - revokedAt < 1000) {
      const r = await onB.get('/v1/me');
      if (r.status === 401) {
        refusedAfter = Date.now() - revokedAt;
        break;
      }
      await sleep(20);
    }
    expect(refusedAfter).toBeGreaterThanOrEqual(0);
    expect(refusedAfter).toBeLessThan(1000);
    expect((await onA.get('/v1/me')).status).toBe(401);
  });

  it('applies a suspension on every instance within one second', async () => {
    const [a, b] = started.length >= 2 ? started : await Promise.all([startApi(), startApi()]);
    const t = await createTenant(a.url);
    const onB = new Api(b.url, t.key.secret);
    expect((await onB.get('/v1/me')).status).toBe(200);
    await new Api(a.url, process.env.ADMIN_API_KEY).patch(`/v1/admin/tenants/${t.id}`, { status: 'suspended' });
    await sleep(300);
    expect((await onB.get('/v1/me')).status).toBe(403);
  });
});

describe('readiness', () => {
  it('goes 503 naming Redis when Redis stops, and back to 200 when it returns', async () => {
    const redis = await PrivateRedis.start();
    try {
      const api = await startApi({ REDIS_URL: redis.url });
      started.push(api);
      const anon = new Api(api.url);
      expect((await anon.get('/readyz')).status).toBe(200);

      await redis.kill();
      const down = await anon.get('/readyz');
      expect(down.status).toBe(503);
      expect(down.body.checks).toEqual({ postgres: 'ok', redis: 'down' });
      expect(down.body.message).toContain('redis');
      expect((await anon.get('/healthz')).status).toBe(200);

      // Tenant routes keep working: the rate limiter falls back to this instance's own buckets.
      const t = await createTenant(api.url, { quotas: { requests_per_minute: 3 } });
      const degraded = await t.api.get('/v1/me');
      expect(degraded.status).toBe(200);
      expect(degraded.headers.get('ratelimit')).toMatch(/^"requests";r=2;/);
      await t.api.get('/v1/me');
      await t.api.get('/v1/me');
      const limited = await t.api.get('/v1/me');
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeTruthy();
      await new Api(api.url, process.env.ADMIN_API_KEY).patch(`/v1/admin/tenants/${t.id}`, { quotas: { requests_per_minute: 1000 } });

      await redis.resume();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await sleep(100);
        status = (await anon.get('/readyz')).status;
      }
      expect(status).toBe(200);
      expect((await t.api.get('/v1/me')).status).toBe(200);
    } finally {
      await redis.destroy();
    }
  });
});
