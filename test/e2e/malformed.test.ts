import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminKey, createTenant, type TenantFixture } from '../support/factories.js';
import { type RunningApi, startApi } from '../support/processes.js';

let server: RunningApi;
let tenant: TenantFixture;

beforeAll(async () => {
  server = await startApi({ BODY_LIMIT_BYTES: '4096' });
  tenant = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
});
afterAll(() => server?.stop());

interface Attempt {
  method: string;
  path: string;
  key: 'tenant' | 'admin' | 'none' | string;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

const bodies: Array<[string, string | undefined]> = [
  ['invalid JSON', '{"name":'],
  ['JSON null', 'null'],
  ['JSON array', '[]'],
  ['JSON string', '"name"'],
  ['JSON number', '42'],
  ['empty object', '{}'],
  ['wrong type', '{"name": 12}'],
  ['unknown field', '{"name":"x","admin":true}'],
  ['empty name', '{"name":""}'],
  ['huge name', JSON.stringify({ name: 'x'.repeat(300) })],
  ['bad scope', '{"name":"x","scopes":["root"]}'],
  ['scopes not an array', '{"name":"x","scopes":"jobs:read"}'],
  ['empty scopes', '{"name":"x","scopes":[]}'],
  ['bad expiry', '{"name":"x","expires_at":"tomorrow"}'],
  ['past expiry', '{"name":"x","expires_at":"1999-01-01T00:00:00Z"}'],
  ['bad plan', '{"name":"x","plan":"platinum"}'],
  ['bad quota', '{"name":"x","quotas":{"max_concurrent_jobs":-1}}'],
  ['unknown quota', '{"name":"x","quotas":{"gpus":4}}'],
  ['float quota', '{"name":"x","quotas":{"requests_per_minute":1.5}}'],
  ['bad status', '{"status":"deleted"}'],
  ['string rate limit', '{"name":"x","rate_limit_per_minute":"10"}'],
  ['nested garbage', '{"name":{"$gt":""}}'],
  ['over the body limit', JSON.stringify({ name: 'x', pad: 'y'.repeat(5000) })],
  ['deep nesting', '['.repeat(2000) + ']'.repeat(2000)],
  ['no body', undefined],
];

const contentTypes = [
  'application/json',
  'text/plain',
  'application/xml',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
];

function attempts(): Attempt[] {
  const out: Attempt[] = [];
  const posts = [
    { path: '/v1/api-keys', key: 'tenant' },
    { path: '/v1/admin/tenants', key: 'admin' },
    { path: `/v1/admin/tenants/${tenant.id}/api-keys`, key: 'admin' },
  ];
  for (const p of posts)
    for (const [, body] of bodies)
      out.push({ method: 'POST', ...p, body, contentType: body === undefined ? undefined : 'application/json' });
  for (const [, body] of bodies)
    out.push({
      method: 'PATCH',
      path: `/v1/admin/tenants/${tenant.id}`,
      key: 'admin',
      body,
      contentType: body === undefined ? undefined : 'application/json',
    });
  for (const p of posts) for (const ct of contentTypes.slice(1)) out.push({ method: 'POST', ...p, body: '{"name":"x"}', contentType: ct });
  const badQueries = [
    'limit=0',
    'limit=101',
    'limit=abc',
    'limit=-5',
    'limit=1.5',
    'starting_after=',
    'starting_after=key_nope',
    'foo=bar',
    'limit=10&limit=20',
    'limit=%ZZ',
    'status=weird',
  ];
  for (const q of badQueries) {
    out.push({ method: 'GET', path: `/v1/api-keys?${q}`, key: 'tenant' });
    out.push({ method: 'GET', path: `/v1/admin/tenants?${q}`, key: 'admin' });
    out.push({ method: 'GET', path: `/v1/admin/audit-log?${q}`, key: 'admin' });
    out.push({ method: 'GET', path: `/v1/admin/tenants/${tenant.id}/api-keys?${q}`, key: 'admin' });
  }
  const badIds = ['x', 'ten_', 'key_', '%00', '..%2F..%2Fetc', `ten_${'a'.repeat(300)}`, "ten_1'--", 'ten_%F0%9F%92%A9', 'ten_ab cd'];
  for (const id of badIds) {
    out.push({ method: 'GET', path: `/v1/admin/tenants/${id}`, key: 'admin' });
    out.push({ method: 'DELETE', path: `/v1/admin/tenants/${id}`, key: 'admin' });
    out.push({ method: 'DELETE', path: `/v1/api-keys/${id}`, key: 'tenant' });
    out.push({ method: 'GET', path: `/v1/admin/tenants/${id}/usage`, key: 'admin' });
  }
  for (const q of ['from=yesterday', 'to=2026-13-45', 'from=2026-05-01&to=2026-01-01', 'from=2026-02-30', 'x=1']) {
    out.push({ method: 'GET', path: `/v1/admin/tenants/${tenant.id}/usage?${q}`, key: 'admin' });
  }
  const keys = ['', 'Bearer', 'aik_', 'adm_', `aik_${'x'.repeat(500)}`, 'Bearer aik_abc', 'aik_\u00e9\u00e9'];
  for (const k of keys) out.push({ method: 'GET', path: '/v1/me', key: k });
  out.push({ method: 'GET', path: '/v1/me', key: 'tenant', headers: { 'Idempotency-Key': 'x' } });
  out.push({
    method: 'POST',
    path: '/v1/api-keys',
    key: 'tenant',
    body: '{"name":"x"}',
    contentType: 'application/json',
    headers: { 'Idempotency-Key': 'k'.repeat(300) },
  });
  out.push({ method: 'PUT', path: '/v1/me', key: 'tenant' });
  out.push({ method: 'GET', path: '/v1/nothing-here', key: 'tenant' });
  out.push({ method: 'POST', path: '/v1/me', key: 'tenant', body: '{}', contentType: 'application/json' });
  return out;
}

describe('malformed requests', () => {
  it('answers every one of at least 200 malformed requests with a 4xx in the error shape, never a 5xx', async () => {
    const list = attempts();
    expect(list.length).toBeGreaterThanOrEqual(200);
    const fivexx: string[] = [];
    const badShape: string[] = [];
    for (const a of list) {
      const headers: Record<string, string> = { ...a.headers };
      const key = a.key === 'tenant' ? tenant.key.secret : a.key === 'admin' ? adminKey() : a.key;
      if (a.key !== 'none') headers.authorization = a.key.startsWith('Bearer') ? a.key : `Bearer ${key}`;
      if (a.contentType) headers['content-type'] = a.contentType;
      let status: number;
      let text: string;
      try {
        const res = await fetch(server.url + a.path, { method: a.method, headers, body: a.body });
        status = res.status;
        text = await res.text();
        if (!res.headers.get('request-id')) badShape.push(`${a.method} ${a.path}: no Request-Id`);
      } catch (err) {
        // Header values fetch itself refuses to send are not requests the server saw.
        if (String(err).includes('Headers') || String(err).includes('header')) continue;
        throw err;
      }
      const what = `${a.method} ${a.path.slice(0, 80)} [${a.contentType ?? '-'}] ${String(a.body).slice(0, 40)} → ${status} ${text.slice(0, 160)}`;
      if (status >= 500) fivexx.push(what);
      else if (status >= 400) {
        const body = JSON.parse(text) as { error?: { type?: string; code?: string; message?: string } };
        if (!body.error?.type || !body.error.code || !body.error.message) badShape.push(what);
      } else if (!(a.method === 'GET' && a.path.includes('Idempotency')) && status !== 200 && status !== 201) {
        badShape.push(`unexpected ${what}`);
      }
    }
    expect(fivexx).toEqual([]);
    expect(badShape).toEqual([]);
  });

  it('names what was wrong', async () => {
    const r = await tenant.api.post('/v1/api-keys', { name: 'x', admin: true });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_unknown', param: 'admin' });
    const big = await tenant.api.call('POST', '/v1/api-keys', {
      raw: JSON.stringify({ name: 'x'.repeat(5000) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(big.status).toBe(413);
    const type = await tenant.api.call('POST', '/v1/api-keys', { raw: 'name=x', headers: { 'content-type': 'text/plain' } });
    expect(type.status).toBe(415);
    expect(type.body.error.message).toContain('text/plain');
    const json = await tenant.api.call('POST', '/v1/api-keys', { raw: '{"name":', headers: { 'content-type': 'application/json' } });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe('body_invalid_json');
    const limit = await tenant.api.get('/v1/api-keys?limit=500');
    expect(limit.body.error.param).toBe('limit');
  });
});
