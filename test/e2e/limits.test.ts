import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createTenant } from '../support/factories.js';
import { type RunningApi, startApi } from '../support/processes.js';

let server: RunningApi;

beforeAll(async () => {
  server = await startApi();
});
afterAll(() => server?.stop());

describe('rate limits', () => {
  it('sends RateLimit-Policy and RateLimit on every tenant response', async () => {
    const t = await createTenant(server.url, { quotas: { requests_per_minute: 30 } });
    const first = await t.api.get('/v1/me');
    expect(first.headers.get('ratelimit-policy')).toBe('"requests";q=30;w=60');
    expect(first.headers.get('ratelimit')).toMatch(/^"requests";r=29;t=\d+$/);
    const second = await t.api.get('/v1/api-keys');
    expect(second.headers.get('ratelimit')).toMatch(/^"requests";r=28;t=\d+$/);
    const refused = await t.api.post('/v1/api-keys', { name: 1 });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('ratelimit')).toMatch(/^"requests";r=27;/);
  });

  it('answers 429 with Retry-After once the tenant bucket is empty, for every key of the tenant', async () => {
    const t = await createTenant(server.url, { quotas: { requests_per_minute: 5 } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await t.api.get('/v1/me')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const limited = await t.api.get('/v1/me');
    expect(limited.status).toBe(429);
    expect(limited.body.error).toMatchObject({ type: 'rate_limit_error', code: 'requests_per_minute' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(12);
    expect(limited.headers.get('ratelimit')).toMatch(/^"requests";r=0;t=\d+$/);
  });

  it('keeps tenants apart: one tenant’s empty bucket does not limit another', async () => {
    const a = await createTenant(server.url, { quotas: { requests_per_minute: 2 } });
    const b = await createTenant(server.url, { quotas: { requests_per_minute: 2 } });
    await a.api.get('/v1/me');
    await a.api.get('/v1/me');
    expect((await a.api.get('/v1/me')).status).toBe(429);
    expect((await b.api.get('/v1/me')).status).toBe(200);
  });

  it('limits a key with its own rate_limit_per_minute below the tenant’s', async () => {
    const t = await createTenant(server.url, { quotas: { requests_per_minute: 1000 } });
    const narrow = await t.api.post('/v1/api-keys', { name: 'narrow', rate_limit_per_minute: 2 });
    const api = t.api.as(narrow.body.secret);
    const first = await api.get('/v1/me');
    expect(first.headers.get('ratelimit-policy')).toBe('"requests";q=1000;w=60, "key";q=2;w=60');
    expect(first.headers.get('ratelimit')).toMatch(/^"key";r=1;/);
    await api.get('/v1/me');
    const limited = await api.get('/v1/me');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('key_requests_per_minute');
    expect((await t.api.get('/v1/me')).status).toBe(200);
  });

  it('applies an admin’s quota edit at once', async () => {
    const t = await createTenant(server.url, { quotas: { requests_per_minute: 3 } });
    const admin = t.api.as(process.env.ADMIN_API_KEY!);
    await t.api.get('/v1/me');
    await admin.patch(`/v1/admin/tenants/${t.id}`, { quotas: { requests_per_minute: 500 } });
    const me = await t.api.get('/v1/me');
    expect(me.body.quotas.requests_per_minute).toBe(500);
    expect(me.headers.get('ratelimit-policy')).toBe('"requests";q=500;w=60');
  });
});

describe('idempotency', () => {
  it('replays the stored answer for a repeat with the same key and body', async () => {
    const t = await createTenant(server.url);
    const headers = { 'Idempotency-Key': 'create-key-1' };
    const first = await t.api.post('/v1/api-keys', { name: 'once' }, { headers });
    const again = await t.api.post('/v1/api-keys', { name: 'once' }, { headers });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(again.body).toEqual(first.body);
    const keys = await t.api.get('/v1/api-keys');
    expect(keys.body.data.filter((k: { name: string }) => k.name === 'once')).toHaveLength(1);
  });

  it('answers 422 for the same key with another body', async () => {
    const t = await createTenant(server.url);
    const headers = { 'Idempotency-Key': 'k-mismatch' };
    await t.api.post('/v1/api-keys', { name: 'a' }, { headers });
    const other = await t.api.post('/v1/api-keys', { name: 'b' }, { headers });
    expect(other.status).toBe(422);
    expect(other.body.error.type).toBe('idempotency_error');
  });

  it('answers 409 while the first request with the key is still running', async () => {
    const t = await createTenant(server.url);
    // Hold the key as a first request in flight would (claimed, no answer yet), as the API itself writes it:
    // the scope is the tenant and the API key that made the request.
    const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await db.connect();
    const body = { name: 'slow' };
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256')
      .update(`POST /v1/api-keys\n${JSON.stringify(body)}`)
      .digest('hex');
    await db.query(
      `INSERT INTO idempotency_records (scope, key, tenant_id, method, path, request_hash, expires_at) VALUES ($1, 'in-flight', $2, 'POST', '/v1/api-keys', $3, now() + interval '1 day')`,
      [`${t.id}/${t.key.id}`, t.id, hash],
    );
    const r = await t.api.post('/v1/api-keys', body, { headers: { 'Idempotency-Key': 'in-flight' } });
    expect(r.status).toBe(409);
    expect(r.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_request_in_progress' });
    await db.end();
  });

  it('lets only one of many concurrent identical requests run', async () => {
    const t = await createTenant(server.url);
    const headers = { 'Idempotency-Key': 'race' };
    const replies = await Promise.all(Array.from({ length: 8 }, () => t.api.post('/v1/api-keys', { name: 'race' }, { headers })));
    for (const r of replies) expect([201, 409]).toContain(r.status);
    const keys = await t.api.get('/v1/api-keys');
    expect(keys.body.data.filter((k: { name: string }) => k.name === 'race')).toHaveLength(1);
  });

  it('scopes keys to the tenant: two tenants may use the same key', async () => {
    const a = await createTenant(server.url);
    const b = await createTenant(server.url);
    const headers = { 'Idempotency-Key': 'shared-name' };
    const ra = await a.api.post('/v1/api-keys', { name: 'x' }, { headers });
    const rb = await b.api.post('/v1/api-keys', { name: 'x' }, { headers });
    expect(rb.status).toBe(201);
    expect(rb.headers.get('idempotent-replayed')).toBeNull();
    expect(rb.body.id).not.toBe(ra.body.id);
  });

  it('replays a 4xx answer too, and refuses an over-long key', async () => {
    const t = await createTenant(server.url);
    const headers = { 'Idempotency-Key': 'k-404' };
    const admin = t.api.as(process.env.ADMIN_API_KEY!);
    const first = await admin.post('/v1/admin/tenants/ten_missing0000/api-keys', { name: 'x' }, { headers });
    const again = await admin.post('/v1/admin/tenants/ten_missing0000/api-keys', { name: 'x' }, { headers });
    expect(first.status).toBe(404);
    expect(again.status).toBe(404);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const long = await t.api.post('/v1/api-keys', { name: 'x' }, { headers: { 'Idempotency-Key': 'x'.repeat(256) } });
    expect(long.status).toBe(400);
    expect(long.body.error.param).toBe('Idempotency-Key');
  });
});
