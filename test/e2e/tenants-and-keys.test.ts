import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminKey, createTenant, sleep, until } from '../support/factories.js';
import { Api } from '../support/http.js';
import { type RunningApi, startApi } from '../support/processes.js';

let server: RunningApi;
let admin: Api;

beforeAll(async () => {
  server = await startApi();
  admin = new Api(server.url, adminKey());
});
afterAll(() => server?.stop());

describe('admin: tenants', () => {
  it('creates, reads, lists, updates and deletes a tenant', async () => {
    const created = await admin.post('/v1/admin/tenants', { name: 'Acme', plan: 'pro', quotas: { max_concurrent_jobs: 3 } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'tenant', name: 'Acme', plan: 'pro', status: 'active' });
    expect(created.body.id).toMatch(/^ten_/);
    expect(created.body.quotas.max_concurrent_jobs).toBe(3);
    expect(created.body.quotas.requests_per_minute).toBe(6000);

    const got = await admin.get(`/v1/admin/tenants/${created.body.id}`);
    expect(got.body).toEqual(created.body);

    const list = await admin.get('/v1/admin/tenants?limit=100');
    expect(list.body.object).toBe('list');
    expect(list.body.data.map((t: { id: string }) => t.id)).toContain(created.body.id);

    const patched = await admin.patch(`/v1/admin/tenants/${created.body.id}`, {
      name: 'Acme Inc',
      quotas: { max_concurrent_jobs: null, requests_per_minute: 50 },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe('Acme Inc');
    expect(patched.body.quotas.max_concurrent_jobs).toBe(8);
    expect(patched.body.quotas.requests_per_minute).toBe(50);

    const deleted = await admin.delete(`/v1/admin/tenants/${created.body.id}`);
    expect(deleted.body).toEqual({ id: created.body.id, object: 'tenant', deleted: true });
    expect((await admin.get(`/v1/admin/tenants/${created.body.id}`)).status).toBe(404);
  });

  it('pages newest first with starting_after and has_more', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await admin.post('/v1/admin/tenants', { name: `page-${i}` })).body.id);
    const first = await admin.get('/v1/admin/tenants?limit=2');
    expect(first.body.data.map((t: { id: string }) => t.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.has_more).toBe(true);
    const next = await admin.get(`/v1/admin/tenants?limit=1&starting_after=${ids[1]}`);
    expect(next.body.data[0].id).toBe(ids[0]);
  });

  it('answers 404 for an unknown tenant and 400 for a malformed id', async () => {
    expect((await admin.get('/v1/admin/tenants/ten_doesnotexist')).status).toBe(404);
    const bad = await admin.get('/v1/admin/tenants/not-an-id');
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('id');
  });

  it('refuses tenant keys on admin routes and admin keys on tenant routes with 403', async () => {
    const t = await createTenant(server.url);
    const r = await t.api.get('/v1/admin/tenants');
    expect(r.status).toBe(403);
    expect(r.body.error.type).toBe('permission_error');
    const m = await admin.get('/v1/me');
    expect(m.status).toBe(403);
  });

  it('erases everything a deleted tenant owns: its keys stop working at once', async () => {
    const t = await createTenant(server.url);
    expect((await t.api.get('/v1/me')).status).toBe(200);
    await admin.delete(`/v1/admin/tenants/${t.id}`);
    const after = await t.api.get('/v1/me');
    expect(after.status).toBe(401);
    expect((await admin.get(`/v1/admin/tenants/${t.id}/api-keys`)).status).toBe(404);
  });
});

describe('GET /v1/me', () => {
  it('shows the tenant, its quotas and usage now', async () => {
    const t = await createTenant(server.url, { quotas: { requests_per_minute: 100 } });
    const me = await t.api.get('/v1/me');
    expect(me.status).toBe(200);
    expect(me.body.tenant.id).toBe(t.id);
    expect(me.body.quotas.requests_per_minute).toBe(100);
    expect(me.body.usage).toEqual({
      running_jobs: 0,
      queued_jobs: 0,
      compute_seconds_this_month: 0,
      storage_bytes: 0,
      requests_left_this_minute: 99,
    });
    expect(me.headers.get('request-id')).toMatch(/^req_/);
  });
});

describe('tenant API keys', () => {
  it('creates a key whose secret is shown once, then lists it without the secret', async () => {
    const t = await createTenant(server.url);
    const created = await t.api.post('/v1/api-keys', { name: 'ci', scopes: ['jobs:read'] });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^aik_[0-9A-Za-z]{43}$/);
    expect(created.body.prefix).toBe(created.body.secret.slice(0, 12));
    expect(created.body.scopes).toEqual(['jobs:read']);
    const list = await t.api.get('/v1/api-keys');
    const listed = list.body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(listed).toBeDefined();
    expect(listed.secret).toBeUndefined();
    expect(JSON.stringify(list.body)).not.toContain(created.body.secret);
  });

  it('records last_used_at when a key is used', async () => {
    const t = await createTenant(server.url);
    await t.api.get('/v1/me');
    // recorded after the answer, off the request path: wait for it
    const me = await until('last_used_at recorded', async () => {
      const keys = await t.api.get('/v1/api-keys');
      const key = keys.body.data.find((k: { id: string; last_used_at: string | null }) => k.id === t.key.id);
      return key?.last_used_at ? key : null;
    });
    expect(new Date(me.last_used_at).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('revokes a key: 401 afterwards, and revoking again is harmless', async () => {
    const t = await createTenant(server.url);
    const other = await t.api.post('/v1/api-keys', { name: 'temp' });
    const otherApi = t.api.as(other.body.secret);
    expect((await otherApi.get('/v1/me')).status).toBe(200);
    const revoked = await t.api.delete(`/v1/api-keys/${other.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    const after = await otherApi.get('/v1/me');
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('api_key_revoked');
    expect((await t.api.delete(`/v1/api-keys/${other.body.id}`)).status).toBe(200);
  });

  it('rejects an expired key with 401', async () => {
    const t = await createTenant(server.url);
    const soon = new Date(Date.now() + 1500).toISOString();
    const k = await t.api.post('/v1/api-keys', { name: 'short', expires_at: soon });
    expect(k.status).toBe(201);
    const api = t.api.as(k.body.secret);
    expect((await api.get('/v1/me')).status).toBe(200);
    await sleep(1700);
    const r = await api.get('/v1/me');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('api_key_expired');
  });

  it('refuses an expiry in the past', async () => {
    const t = await createTenant(server.url);
    const r = await t.api.post('/v1/api-keys', { name: 'x', expires_at: '2001-01-01T00:00:00Z' });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('expires_at');
  });

  it('enforces scopes: a call outside the key’s scopes is a 403 naming the scope', async () => {
    const t = await createTenant(server.url);
    const narrow = await t.api.post('/v1/api-keys', { name: 'read-only', scopes: ['jobs:read'] });
    const r = await t.api.as(narrow.body.secret).post('/v1/api-keys', { name: 'escalate' });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('missing_scope');
    expect(r.body.error.message).toContain('keys:write');
    expect((await t.api.as(narrow.body.secret).get('/v1/me')).status).toBe(200);
  });

  it('answers 401 for a missing, malformed or unknown key', async () => {
    const anon = new Api(server.url);
    expect((await anon.get('/v1/me')).status).toBe(401);
    expect((await anon.get('/v1/me', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
    expect((await anon.get('/v1/me', { key: 'aik_unknownunknownunknownunknownunknownunknownx' })).status).toBe(401);
    expect((await anon.get('/v1/me', { key: 'nonsense' })).status).toBe(401);
    // Authentication comes before validation: a stranger learns nothing about the route's body.
    expect((await anon.post('/v1/api-keys', { unknown: true })).status).toBe(401);
  });
});

describe('tenant isolation', () => {
  it('another tenant’s key id answers exactly as an unknown id (404)', async () => {
    const a = await createTenant(server.url);
    const b = await createTenant(server.url);
    const unknown = await a.api.delete('/v1/api-keys/key_doesnotexist00');
    const foreign = await a.api.delete(`/v1/api-keys/${b.key.id}`);
    expect(foreign.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(foreign.body.error.type).toBe(unknown.body.error.type);
    expect(foreign.body.error.code).toBe(unknown.body.error.code);
    expect((await b.api.get('/v1/me')).status).toBe(200);
  });

  it('lists only the tenant’s own keys, and refuses another tenant’s id as a cursor', async () => {
    const a = await createTenant(server.url);
    const b = await createTenant(server.url);
    const list = await a.api.get('/v1/api-keys?limit=100');
    expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([a.key.id]);
    const cursor = await a.api.get(`/v1/api-keys?starting_after=${b.key.id}`);
    expect(cursor.status).toBe(400);
    expect(cursor.body.error.param).toBe('starting_after');
  });

  it('GET /v1/me shows only the caller’s tenant', async () => {
    const a = await createTenant(server.url);
    const b = await createTenant(server.url);
    expect((await a.api.get('/v1/me')).body.tenant.id).toBe(a.id);
    expect((await b.api.get('/v1/me')).body.tenant.id).toBe(b.id);
  });
});

describe('suspension', () => {
  it('answers 403 on every tenant route while suspended, and 200 again once reactivated', async () => {
    const t = await createTenant(server.url);
    expect((await admin.patch(`/v1/admin/tenants/${t.id}`, { status: 'suspended' })).body.status).toBe('suspended');
    for (const [method, path] of [
      ['GET', '/v1/me'],
      ['GET', '/v1/api-keys'],
      ['POST', '/v1/api-keys'],
      ['DELETE', `/v1/api-keys/${t.key.id}`],
    ] as const) {
      const r = await t.api.call(method, path, method === 'POST' ? { body: { name: 'x' } } : {});
      expect([method, path, r.status, r.body.error?.code]).toEqual([method, path, 403, 'tenant_suspended']);
    }
    await admin.patch(`/v1/admin/tenants/${t.id}`, { status: 'active' });
    expect((await t.api.get('/v1/me')).status).toBe(200);
  });
});
