import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { adminKey, createTenant, sleep, until } from '../support/factories.js';
import { Api } from '../support/http.js';
import { type RunningApi, startApi, startWorker } from '../support/processes.js';

let server: RunningApi;
let admin: Api;

beforeAll(async () => {
  server = await startApi();
  admin = new Api(server.url, adminKey());
});
afterAll(() => server?.stop());

describe('admin: tenant API keys', () => {
  it('creates, lists and revokes a tenant’s keys', async () => {
    const t = await createTenant(server.url);
    const k = await admin.post(`/v1/admin/tenants/${t.id}/api-keys`, { name: 'ops', scopes: ['models:read'] });
    expect(k.status).toBe(201);
    expect(k.body.tenant_id).toBe(t.id);
    const list = await admin.get(`/v1/admin/tenants/${t.id}/api-keys`);
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([k.body.id, t.key.id]);
    const revoked = await admin.delete(`/v1/admin/tenants/${t.id}/api-keys/${k.body.id}`);
    expect(revoked.body.revoked_at).not.toBeNull();
    expect((await t.api.as(k.body.secret).get('/v1/me')).status).toBe(401);
  });

  it('answers 404 for a key of another tenant under this tenant’s path', async () => {
    const a = await createTenant(server.url);
    const b = await createTenant(server.url);
    const r = await admin.delete(`/v1/admin/tenants/${a.id}/api-keys/${b.key.id}`);
    expect(r.status).toBe(404);
    expect((await b.api.get('/v1/me')).status).toBe(200);
  });
});

describe('admin: usage', () => {
  it('counts a tenant’s requests per day', async () => {
    const t = await createTenant(server.url);
    for (let i = 0; i < 7; i++) await t.api.get('/v1/me');
    const today = new Date().toISOString().slice(0, 10);
    const u = await admin.get(`/v1/admin/tenants/${t.id}/usage?from=${today}&to=${today}`);
    expect(u.status).toBe(200);
    expect(u.body).toMatchObject({
      object: 'tenant_usage',
      tenant_id: t.id,
      from: today,
      to: today,
      requests: 7,
      compute_seconds: 0,
      storage_bytes: 0,
    });
    expect(u.body.daily).toEqual([{ day: today, metric: 'requests', value: 7 }]);
  });

  it('keeps the count exact across the flush from Redis to PostgreSQL', async () => {
    const t = await createTenant(server.url);
    for (let i = 0; i < 4; i++) await t.api.get('/v1/me');
    // The meter flushes Redis to PostgreSQL every 5 s: wait until the 4 are in usage_counters, so that the
    // next 3 are counted on the other side of a flush (the test fails if the flush never runs).
    const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await db.connect();
    try {
      await until(
        'the usage flush',
        async () =>
          (
            await db.query<{ value: number }>(
              "SELECT value::int AS value FROM usage_counters WHERE tenant_id = $1 AND metric = 'requests'",
              [t.id],
            )
          ).rows[0]?.value === 4,
        30_000,
      );
    } finally {
      await db.end();
    }
    for (let i = 0; i < 3; i++) await t.api.get('/v1/api-keys');
    const u = await admin.get(`/v1/admin/tenants/${t.id}/usage`);
    expect(u.body.requests).toBe(7);
  });

  it('refuses a range that ends before it starts', async () => {
    const t = await createTenant(server.url);
    const r = await admin.get(`/v1/admin/tenants/${t.id}/usage?from=2026-05-02&to=2026-05-01`);
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('from');
  });
});

describe('admin: audit log', () => {
  it('records every admin action and key change with the acting key id', async () => {
    const t = await createTenant(server.url);
    const k = await t.api.post('/v1/api-keys', { name: 'audited' });
    await t.api.delete(`/v1/api-keys/${k.body.id}`);
    await admin.patch(`/v1/admin/tenants/${t.id}`, { status: 'suspended' });
    const log = await admin.get(`/v1/admin/audit-log?tenant=${t.id}&limit=100`);
    expect(log.status).toBe(200);
    const entries = log.body.data.map((e: { action: string; actor_type: string; actor_key_id: string; target_id: string }) => [
      e.action,
      e.actor_type,
      e.target_id,
    ]);
    expect(entries).toEqual([
      ['tenant.suspended', 'admin', t.id],
      ['api_key.revoked', 'tenant', k.body.id],
      ['api_key.created', 'tenant', k.body.id],
      ['api_key.created', 'admin', t.key.id],
      ['tenant.created', 'admin', t.id],
    ]);
    const byTenantKey = log.body.data.find((e: { action: string }) => e.action === 'api_key.revoked');
    expect(byTenantKey.actor_key_id).toBe(t.key.id);
    const adminEntry = log.body.data.find((e: { action: string }) => e.action === 'tenant.suspended');
    expect(adminEntry.actor_key_id).toMatch(/^adk_/);
  });

  it('filters by action', async () => {
    const r = await admin.get('/v1/admin/audit-log?action=tenant.created&limit=5');
    expect(r.body.data.length).toBeGreaterThan(0);
    for (const e of r.body.data) expect(e.action).toBe('tenant.created');
  });
});

describe('admin: workers', () => {
  it('lists a running worker by its heartbeat, and forgets it after a clean shutdown', async () => {
    const worker = await startWorker({ WORKER_HEARTBEAT_MS: '200', WORKER_CONCURRENCY: '3' });
    try {
      const list = await admin.get('/v1/admin/workers');
      const mine = list.body.data.find((w: { id: string }) => w.id === worker.ready.id);
      expect(mine).toMatchObject({ object: 'worker', concurrency: 3, current_jobs: [] });
      expect(Date.now() - Date.parse(mine.last_heartbeat_at)).toBeLessThan(5_000);
      await sleep(500);
      const again = (await admin.get('/v1/admin/workers')).body.data.find((w: { id: string }) => w.id === worker.ready.id);
      expect(Date.parse(again.last_heartbeat_at)).toBeGreaterThan(Date.parse(mine.last_heartbeat_at));
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    const after = await admin.get('/v1/admin/workers');
    expect(after.body.data.find((w: { id: string }) => w.id === worker.ready.id)).toBeUndefined();
  });

  it('a tenant key gets 403 on every admin route', async () => {
    const t = await createTenant(server.url);
    const routes: Array<[string, string]> = [
      ['GET', '/v1/admin/tenants'],
      ['POST', '/v1/admin/tenants'],
      ['GET', `/v1/admin/tenants/${t.id}`],
      ['PATCH', `/v1/admin/tenants/${t.id}`],
      ['DELETE', `/v1/admin/tenants/${t.id}`],
      ['GET', `/v1/admin/tenants/${t.id}/usage`],
      ['GET', `/v1/admin/tenants/${t.id}/api-keys`],
      ['POST', `/v1/admin/tenants/${t.id}/api-keys`],
      ['DELETE', `/v1/admin/tenants/${t.id}/api-keys/${t.key.id}`],
      ['GET', '/v1/admin/audit-log'],
      ['GET', '/v1/admin/workers'],
    ];
    for (const [method, path] of routes) {
      const r = await t.api.call(method, path, method === 'POST' || method === 'PATCH' ? { body: { name: 'x' } } : {});
      expect([method, path, r.status]).toEqual([method, path, 403]);
    }
    expect((await t.api.get('/v1/me')).status).toBe(200);
  });
});
