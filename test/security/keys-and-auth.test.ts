import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import pg from 'pg';
import { adminKey, createTenant, type TenantFixture } from '../support/factories.js';
import { Api } from '../support/http.js';
import { type RunningApi, startApi } from '../support/processes.js';

const ALL_SCOPES = [
  'datasets:read',
  'datasets:write',
  'models:read',
  'models:write',
  'jobs:read',
  'jobs:write',
  'webhooks:read',
  'webhooks:write',
  'keys:read',
  'keys:write',
];

let server: RunningApi;
let admin: Api;
let db: pg.Client;
let t: TenantFixture;

beforeAll(async () => {
  server = await startApi({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  admin = new Api(server.url, adminKey());
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  t = await createTenant(server.url);
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const idem = () => ({ 'idempotency-key': `idem-${randomBytes(6).toString('hex')}` });
const randomKey = () =>
  `aik_${randomBytes(32)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .padEnd(43, 'a')
    .slice(0, 43)}`;

/** Every idempotency record of an Idempotency-Key, as the text of its whole row. */
async function recordsOf(key: string): Promise<string[]> {
  const { rows } = await db.query<{ row: string }>('SELECT row_to_json(r)::text AS row FROM idempotency_records r WHERE key = $1', [key]);
  return rows.map((r) => r.row);
}

describe('a key makes no key stronger than itself', () => {
  it('refuses scopes, an expiry and a rate limit beyond its own, and inherits them when left out', async () => {
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    const made = await t.api.post('/v1/api-keys', {
      name: 'narrow',
      scopes: ['keys:write'],
      expires_at: expiresAt,
      rate_limit_per_minute: 30,
    });
    expect(made.status).toBe(201);
    const narrow = t.api.as(made.body.secret);

    const wide = await narrow.post('/v1/api-keys', { name: 'wide', scopes: ALL_SCOPES });
    expect(wide.status).toBe(403);
    expect(wide.body.error).toMatchObject({ type: 'permission_error', code: 'scope_not_held', param: 'scopes' });
    expect(wide.body.error.message).toContain('datasets:read');
    expect(wide.body.error.message).not.toContain('keys:write');

    const later = await narrow.post('/v1/api-keys', { name: 'later', expires_at: new Date(Date.now() + 3600_000).toISOString() });
    expect(later.status).toBe(403);
    expect(later.body.error).toMatchObject({ code: 'expires_after_caller', param: 'expires_at' });

    const looser = await narrow.post('/v1/api-keys', { name: 'looser', rate_limit_per_minute: 1000 });
    expect(looser.status).toBe(403);
    expect(looser.body.error).toMatchObject({ code: 'rate_limit_exceeds_caller', param: 'rate_limit_per_minute' });

    const child = await narrow.post('/v1/api-keys', { name: 'child' });
    expect(child.status).toBe(201);
    expect(child.body).toMatchObject({ scopes: ['keys:write'], rate_limit_per_minute: 30 });
    expect(Date.parse(child.body.expires_at)).toBe(Date.parse(expiresAt));

    const sooner = await narrow.post('/v1/api-keys', {
      name: 'sooner',
      scopes: ['keys:write'],
      expires_at: new Date(Date.now() + 60_000).toISOString(),
      rate_limit_per_minute: 5,
    });
    expect(sooner.status).toBe(201);
  });

  it('cannot revoke a key that holds scopes it lacks', async () => {
    const made = await t.api.post('/v1/api-keys', { name: 'revoker', scopes: ['keys:write'] });
    const revoker = t.api.as(made.body.secret);
    const refused = await revoker.delete(`/v1/api-keys/${t.key.id}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('scope_not_held');
    expect((await t.api.get('/v1/me')).status).toBe(200);
    const peer = await t.api.post('/v1/api-keys', { name: 'peer', scopes: ['keys:write'] });
    expect((await revoker.delete(`/v1/api-keys/${peer.body.id}`)).status).toBe(200);
  });

  it('needs keys:read to list keys, which keys made with every scope hold', async () => {
    const jobsOnly = await t.api.post('/v1/api-keys', { name: 'jobs', scopes: ['jobs:read'] });
    const listed = await t.api.as(jobsOnly.body.secret).get('/v1/api-keys');
    expect(listed.status).toBe(403);
    expect(listed.body.error).toMatchObject({ code: 'missing_scope' });
    expect(listed.body.error.message).toContain('keys:read');
    const reader = await t.api.post('/v1/api-keys', { name: 'reader', scopes: ['keys:read'] });
    expect((await t.api.as(reader.body.secret).get('/v1/api-keys')).status).toBe(200);
    const first = await admin.get(`/v1/admin/tenants/${t.id}/api-keys?limit=100`);
    expect(first.body.data.find((k: { id: string }) => k.id === t.key.id).scopes).toEqual(ALL_SCOPES);
  });
});

describe('idempotency and secrets', () => {
  it('replays a new API key only to the key that made it, and stores no secret in the clear', async () => {
    const other = await t.api.post('/v1/api-keys', { name: 'other' });
    const b = t.api.as(other.body.secret);
    const h = idem();
    const first = await t.api.post('/v1/api-keys', { name: 'made once' }, { headers: h });
    expect(first.status).toBe(201);
    const again = await t.api.post('/v1/api-keys', { name: 'made once' }, { headers: h });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);

    const fromB = await b.post('/v1/api-keys', { name: 'made once' }, { headers: h });
    expect(fromB.status).toBe(201);
    expect(fromB.headers.get('idempotent-replayed')).toBeNull();
    expect(fromB.body.id).not.toBe(first.body.id);
    expect(fromB.body.secret).not.toBe(first.body.secret);

    const rows = await recordsOf(h['idempotency-key']);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).not.toContain(first.body.secret);
      expect(row).not.toContain(fromB.body.secret);
      expect(row).not.toMatch(/aik_[A-Za-z0-9]{20}/);
    }
  });

  it('does the same for webhook secrets, at registration and at rotation', async () => {
    const other = await t.api.post('/v1/api-keys', { name: 'other-wh' });
    const b = t.api.as(other.body.secret);
    const h = idem();
    const body = { url: 'http://127.0.0.1:9/hook' };
    const first = await t.api.post('/v1/webhooks', body, { headers: h });
    expect(first.status).toBe(201);
    expect((await t.api.post('/v1/webhooks', body, { headers: h })).body.secret).toBe(first.body.secret);
    const fromB = await b.post('/v1/webhooks', body, { headers: h });
    expect(fromB.body.id).not.toBe(first.body.id);
    expect(fromB.body.secret).not.toBe(first.body.secret);

    const r = idem();
    const rotated = await t.api.post(`/v1/webhooks/${first.body.id}/rotate-secret`, undefined, { headers: r });
    expect(rotated.status).toBe(200);
    const replayed = await t.api.post(`/v1/webhooks/${first.body.id}/rotate-secret`, undefined, { headers: r });
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body.secret).toBe(rotated.body.secret);
    expect((await b.post(`/v1/webhooks/${first.body.id}/rotate-secret`, undefined, { headers: r })).body.secret).not.toBe(
      rotated.body.secret,
    );

    for (const row of [...(await recordsOf(h['idempotency-key'])), ...(await recordsOf(r['idempotency-key']))]) {
      expect(row).not.toContain('whsec_');
      expect(row).toContain('"response_sealed":"v1.');
    }
  });

  it("seals the secret of an admin's key creation too", async () => {
    const h = idem();
    const first = await admin.post(`/v1/admin/tenants/${t.id}/api-keys`, { name: 'by admin' }, { headers: h });
    const again = await admin.post(`/v1/admin/tenants/${t.id}/api-keys`, { name: 'by admin' }, { headers: h });
    expect(again.body.secret).toBe(first.body.secret);
    const [row] = await recordsOf(h['idempotency-key']);
    expect(row).not.toContain(first.body.secret);
  });
});

describe('authentication', () => {
  it('refuses a key in the query string with 401, tenant and admin keys alike', async () => {
    const tenant = await new Api(server.url).get(`/v1/me?access_token=${t.key.secret}`);
    expect(tenant.status).toBe(401);
    expect(tenant.body.error.type).toBe('authentication_error');
    expect((await new Api(server.url).get(`/v1/admin/tenants?access_token=${adminKey()}`)).status).toBe(401);
    const inBody = await new Api(server.url).post('/v1/models', { name: 'm', task: 'classification', access_token: t.key.secret });
    expect(inBody.status).toBe(401);
  });

  it('answers a large upload with an unknown key before the upload is sent', async () => {
    const total = 16 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'a');
    for (const authorization of [`Bearer ${randomKey()}`, 'Bearer not-a-key']) {
      let sent = 0;
      const started = Date.now();
      const status = await new Promise<number>((resolve, reject) => {
        // JSON: the body type that is parsed whole (CSV and NDJSON stream to the route).
        const req = request(`${server.url}/v1/datasets`, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json', 'content-length': String(total) },
        });
        req.on('response', (res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on('error', (err) => (sent < total ? undefined : reject(err)));
        // 64 KiB every 20 ms: the whole body would take over 5 s.
        const timer = setInterval(() => {
          if (req.destroyed || sent >= total) return clearInterval(timer);
          req.write(chunk);
          sent += chunk.length;
        }, 20);
      });
      expect(status).toBe(401);
      expect(sent).toBeLessThan(total / 4);
      expect(Date.now() - started).toBeLessThan(2_000);
    }
  });
});

describe('with a strict failure throttle and small stored answers', () => {
  let strict: RunningApi;
  let s: TenantFixture;
  beforeAll(async () => {
    // Its own Redis prefix: the failures counted here must not throttle 127.0.0.1 for the other suites.
    strict = await startApi({
      AUTH_FAILURES_PER_MINUTE: '10',
      IDEMPOTENCY_MAX_ANSWER_BYTES: '1024',
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}-strict`,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    });
    s = await createTenant(strict.url, { quotas: { max_api_keys: 2, max_webhook_endpoints: 1, max_idempotency_records: 3 } });
  });
  afterAll(() => strict?.stop());

  const lookups = async () => {
    const text = (await new Api(strict.url, adminKey()).get('/metrics')).text;
    return Number(/aiaas_api_key_lookups_total\{source="database"\} (\d+)/.exec(text)?.[1] ?? 0);
  };

  it('keeps the key of an answer too large to store, and says so on replay rather than run twice', async () => {
    const big = await createTenant(strict.url);
    const h = idem();
    const body = { name: 'wordy', task: 'regression', description: 'd'.repeat(1900) };
    const first = await big.api.post('/v1/models', body, { headers: h });
    expect(first.status).toBe(201);
    const replay = await big.api.post('/v1/models', body, { headers: h });
    expect(replay.status).toBe(409);
    expect(replay.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_answer_not_stored' });
    const models = await big.api.get('/v1/models');
    expect(models.body.data).toHaveLength(1);
    const [row] = await recordsOf(h['idempotency-key']);
    expect(row).not.toContain('ddddd');
  });

  it('throttles unknown keys per address without database lookups, while a key in use keeps working', async () => {
    expect((await s.api.get('/v1/me')).status).toBe(200);
    const spare = await s.api.post('/v1/api-keys', { name: 'spare' });
    const stranger = new Api(strict.url);
    const answers: number[] = [];
    for (let i = 0; i < 10; i++) answers.push((await stranger.get('/v1/me', { key: randomKey() })).status);
    expect(answers.every((a) => a === 401)).toBe(true);
    const before = await lookups();
    const throttled = await stranger.get('/v1/me', { key: randomKey() });
    expect(throttled.status).toBe(429);
    expect(throttled.body.error).toMatchObject({ type: 'rate_limit_error', code: 'auth_failures_per_minute' });
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) expect((await stranger.get('/v1/me', { key: randomKey() })).status).toBe(429);
    expect(await lookups()).toBe(before);
    // A key this instance knows is answered from memory and never throttled.
    expect((await s.api.get('/v1/me')).status).toBe(200);
    // One it has not seen needs the lookup this throttle saves: it waits for the window like the rest.
    expect((await s.api.as(spare.body.secret).get('/v1/me')).status).toBe(429);
    expect(await lookups()).toBe(before);
  });

  it('caps API keys, webhook endpoints and idempotency records per tenant, shown in /v1/me', async () => {
    const me = await s.api.get('/v1/me');
    expect(me.body.quotas).toMatchObject({ max_api_keys: 2, max_webhook_endpoints: 1, max_idempotency_records: 3 });
    // The first key and "spare" are active: the cap is reached.
    const third = await s.api.post('/v1/api-keys', { name: 'third' });
    expect(third.status).toBe(403);
    expect(third.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_api_keys' });
    const keys = await s.api.get('/v1/api-keys');
    const spare = keys.body.data.find((k: { name: string }) => k.name === 'spare');
    expect((await s.api.delete(`/v1/api-keys/${spare.id}`)).status).toBe(200);
    expect((await s.api.post('/v1/api-keys', { name: 'third' })).status).toBe(201);
    expect(await admin.post(`/v1/admin/tenants/${s.id}/api-keys`, { name: 'fourth' }).then((r) => r.body.error?.code)).toBe('max_api_keys');

    expect((await s.api.post('/v1/webhooks', { url: 'http://127.0.0.1:9/a' })).status).toBe(201);
    const second = await s.api.post('/v1/webhooks', { url: 'http://127.0.0.1:9/b' });
    expect(second.status).toBe(403);
    expect(second.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_webhook_endpoints' });

    const keysUsed = [idem(), idem(), idem()];
    for (const [i, h] of keysUsed.entries())
      expect((await s.api.post('/v1/models', { name: `m${i}`, task: 'regression' }, { headers: h })).status).toBe(201);
    const over = await s.api.post('/v1/models', { name: 'm3', task: 'regression' }, { headers: idem() });
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_idempotency_records' });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await s.api.get('/v1/models/m3')).status).toBe(404);
    // Replays are not new records.
    const replay = await s.api.post('/v1/models', { name: 'm0', task: 'regression' }, { headers: keysUsed[0] });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });
});
