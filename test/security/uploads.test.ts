import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { adminKey, createTenant, type TenantFixture, until } from '../support/factories.js';
import { Api } from '../support/http.js';
import { type RunningApi, startApi } from '../support/processes.js';

// Finding 1 (a tenant's stalled uploads took every pooled connection, and kept them after it left)
// and finding 4 (quadratic and unbounded parsing of long lines, long fields and wide headers).

let roomy: RunningApi; // uploads per tenant raised, default body timeouts: ten stalled uploads stay open
let strict: RunningApi; // default upload cap, short idle timeout
let db: pg.Client;
let redis: Redis;

beforeAll(async () => {
  [roomy, strict] = await Promise.all([startApi({ UPLOADS_PER_TENANT: '20' }), startApi({ BODY_IDLE_TIMEOUT_MS: '700' })]);
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  redis = new Redis(process.env.REDIS_URL!);
}, 60_000);
afterAll(async () => {
  await db?.end();
  redis?.disconnect();
  await Promise.all([roomy?.stop(), strict?.stop()]);
});

interface SlowUpload {
  req: ClientRequest;
  response: Promise<{ status: number; body: any; headers: IncomingMessage['headers'] }>;
}

/** A chunked CSV upload that sends its header line and then nothing, until the test closes it. */
function stalledUpload(url: string, key: string, name: string, first = 'x,y\n'): SlowUpload {
  const req = request(`${url}/v1/datasets?name=${name}&task=regression&label=y`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv', 'transfer-encoding': 'chunked' },
  });
  const response = new Promise<{ status: number; body: any; headers: IncomingMessage['headers'] }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null, headers: res.headers }));
    });
    req.on('error', reject);
  });
  response.catch(() => undefined);
  req.write(first);
  return { req, response };
}

/** Sessions of the test database left open inside a transaction. */
async function idleInTransaction(): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
  );
  return rows[0].n;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/** Another tenant's everyday calls and the admin's, each answered 200 within a second. */
async function othersStillServed(url: string, other: TenantFixture, modelId: string, datasetId: string): Promise<void> {
  const admin = new Api(url, adminKey());
  const calls = [
    () => other.api.get('/v1/me'),
    () => other.api.get('/v1/datasets'),
    () => other.api.post('/v1/jobs', { type: 'training', model: modelId, dataset: datasetId, hyperparameters: { epochs: 1 } }),
    () => admin.get('/v1/admin/tenants'),
    () => admin.get('/v1/admin/overview'),
  ];
  for (const call of calls) {
    const { value, ms } = await timed(call);
    expect([value.status, value.text.slice(0, 200)]).toEqual([value.status < 300 ? value.status : 200, value.text.slice(0, 200)]);
    expect(ms).toBeLessThan(1_000);
  }
}

async function tenantWithWork(url: string): Promise<{ t: TenantFixture; modelId: string; datasetId: string }> {
  const t = await createTenant(url);
  const records = Array.from({ length: 20 }, (_, i) => ({ a: i, b: i % 3, label: i % 2 ? 'odd' : 'even' }));
  const ds = await t.api.post('/v1/datasets', { name: 'd', task: 'classification', records });
  const model = await t.api.post('/v1/models', { name: 'm', task: 'classification' });
  expect([ds.status, model.status]).toEqual([201, 201]);
  return { t, modelId: model.body.id, datasetId: ds.body.id };
}

function vm(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('stalled and abandoned uploads', () => {
  it('ten stalled uploads hold no database connection: other tenants, admissions and the admin keep answering within a second', async () => {
    const hostile = await createTenant(roomy.url);
    const other = await tenantWithWork(roomy.url);
    const uploads = Array.from({ length: 10 }, (_, i) => stalledUpload(roomy.url, hostile.key.secret, `slow${i}`));
    await until('every upload to have sent its first line', () => uploads.every((u) => (u.req.socket?.bytesWritten ?? 0) > 0), 5_000);
    // Twice: by the second round every upload has long reached its route.
    await othersStillServed(roomy.url, other.t, other.modelId, other.datasetId);
    await othersStillServed(roomy.url, other.t, other.modelId, other.datasetId);
    expect((await new Api(roomy.url, '').get('/readyz')).status).toBe(200);
    expect(await idleInTransaction()).toBe(0);

    // The clients leave mid-body: nothing is stored, nothing stays open, and the service is whole.
    for (const u of uploads) u.req.destroy();
    await until(
      'the abandoned uploads to free their slots',
      async () =>
        (await hostile.api.post('/v1/datasets', { name: 'after', task: 'regression', label: 'y', records: [{ x: 1, y: 2 }] })).status ===
        201,
      10_000,
    );
    expect(await idleInTransaction()).toBe(0);
    const list = await hostile.api.get('/v1/datasets');
    expect(list.body.data.map((d: { name: string }) => d.name)).toEqual(['after']);
    await othersStillServed(roomy.url, other.t, other.modelId, other.datasetId);
  }, 60_000);

  it('limits the uploads a tenant has in flight: the next is a 429 with Retry-After, and a slot frees when one ends', async () => {
    const t = await createTenant(strict.url);
    const other = await createTenant(strict.url);
    const held = Array.from({ length: 4 }, (_, i) => stalledUpload(strict.url, t.key.secret, `held${i}`));
    // Keep them alive past the idle timeout by trickling a row every 200 ms.
    let row = 0;
    const trickle = setInterval(
      () =>
        held.forEach((u) => {
          u.req.write(`${row},${row++}\n`);
        }),
      200,
    );
    try {
      // The four have reached their route when they hold the tenant's four leases.
      await until(
        'four uploads in flight',
        async () => (await redis.zcard(`{${process.env.REDIS_PREFIX}:t:${t.id}}:uploads`)) === 4,
        10_000,
      );
      const refused = await t.api.call('POST', '/v1/datasets?name=fifth&task=regression&label=y', {
        raw: 'x,y\n1,2\n',
        headers: { 'content-type': 'text/csv' },
      });
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ type: 'rate_limit_error', code: 'uploads_in_flight' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Another tenant is not affected.
      const mine = await other.api.call('POST', '/v1/datasets?name=mine&task=regression&label=y', {
        raw: 'x,y\n1,2\n',
        headers: { 'content-type': 'text/csv' },
      });
      expect(mine.status).toBe(201);
      clearInterval(trickle);
      held[0].req.end('1,2\n');
      expect((await held[0].response).status).toBe(201);
      const next = await t.api.call('POST', '/v1/datasets?name=next&task=regression&label=y', {
        raw: 'x,y\n1,2\n',
        headers: { 'content-type': 'text/csv' },
      });
      expect(next.status).toBe(201);
    } finally {
      clearInterval(trickle);
      held.forEach((u) => {
        u.req.destroy();
      });
    }
  }, 30_000);

  it('ends an upload that stalls past the idle timeout with a 408, storing nothing', async () => {
    const t = await createTenant(strict.url);
    const u = stalledUpload(strict.url, t.key.secret, 'stalls');
    const { value, ms } = await timed(() => u.response);
    expect(value.status).toBe(408);
    expect(value.body.error).toMatchObject({ type: 'invalid_request_error', code: 'body_timeout' });
    expect(ms).toBeLessThan(5_000);
    u.req.destroy();
    expect((await t.api.get('/v1/datasets')).body.data).toEqual([]);
    expect(await idleInTransaction()).toBe(0);
  }, 20_000);

  it('ends a JSON body that stalls with a 408 too', async () => {
    const t = await createTenant(strict.url);
    const req = request(`${strict.url}/v1/datasets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key.secret}`, 'content-type': 'application/json', 'content-length': '1000' },
    });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
    });
    req.write('{"name": "x", ');
    const res = await answer;
    req.destroy();
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body).error.code).toBe('body_timeout');
  }, 20_000);
});

describe('long lines, long fields and wide headers', () => {
  it('refuses a 30 MiB single-line NDJSON record in under 2 s, with the API’s memory rising less than 100 MB', async () => {
    const t = await createTenant(roomy.url);
    const body = Buffer.concat([Buffer.from('{"y": 1, "x": "'), Buffer.alloc(30 * 1024 * 1024, 'a'), Buffer.from('"}')]);
    const before = vm(roomy.proc.pid!, 'VmRSS');
    const { value, ms } = await timed(() =>
      t.api.call('POST', '/v1/datasets?name=long&task=regression&label=y', {
        raw: body,
        headers: { 'content-type': 'application/x-ndjson' },
      }),
    );
    expect(value.status).toBe(413);
    expect(value.body.error.code).toBe('record_too_large');
    expect(value.body.error.message).toMatch(/^line 1: .*8388608 bytes/);
    expect(ms).toBeLessThan(2_000);
    expect(vm(roomy.proc.pid!, 'VmHWM') - before).toBeLessThan(100 * 1024 * 1024);
    expect((await t.api.get('/v1/datasets')).body.data).toEqual([]);
  }, 30_000);

  it('refuses a CSV field of 100 MB with no newline as soon as it passes the record limit', async () => {
    const t = await createTenant(roomy.url);
    const body = Buffer.concat([Buffer.from('x,y\n"'), Buffer.alloc(100 * 1024 * 1024, 'b')]);
    const { value, ms } = await timed(() =>
      t.api.call('POST', '/v1/datasets?name=field&task=regression&label=y', { raw: body, headers: { 'content-type': 'text/csv' } }),
    );
    expect(value.status).toBe(413);
    expect(value.body.error).toMatchObject({ code: 'record_too_large' });
    expect(value.body.error.message).toMatch(/^line 2: /);
    expect(ms).toBeLessThan(5_000);
  }, 30_000);

  it('caps the columns of a dataset (CSV header and NDJSON keys), naming the limit', async () => {
    const t = await createTenant(roomy.url);
    const header = `${Array.from({ length: 200_000 }, (_, i) => `c${i}`).join(',')},y\n`;
    const csv = await t.api.call('POST', '/v1/datasets?name=wide&task=regression&label=y', {
      raw: header,
      headers: { 'content-type': 'text/csv' },
    });
    expect(csv.status).toBe(413);
    expect(csv.body.error).toMatchObject({ code: 'dataset_too_many_columns', param: 'columns' });
    expect(csv.body.error.message).toMatch(/200001 columns, more than the limit of 10000/);
    const record = JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`c${i}`, i]).concat([['y', 1]])));
    const ndjson = await t.api.call('POST', '/v1/datasets?name=wide&task=regression&label=y', {
      raw: `${record}\n`,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(ndjson.status).toBe(413);
    expect(ndjson.body.error).toMatchObject({ code: 'dataset_too_many_columns' });
    expect((await t.api.get('/v1/datasets')).body.data).toEqual([]);
  }, 30_000);

  it('answers a feature nested 100,000 deep with a 400 naming the line, not a 500', async () => {
    const t = await createTenant(roomy.url);
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const body = `{"x": 1, "y": 2}\n{"x": ${deep}, "y": 3}\n`;
    const res = await t.api.call('POST', '/v1/datasets?name=deep&task=regression&label=y', {
      raw: body,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'dataset_malformed' });
    expect(res.body.error.message).toMatch(/^line 2: nests/);
    const shallow = await t.api.call('POST', '/v1/datasets?name=obj&task=regression&label=y', {
      raw: '{"x": {"a": [1]}, "y": 3}\n',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(shallow.status).toBe(400);
    expect(shallow.body.error.message).toMatch(/line 1: column 'x' must be a number, got an object/);
  }, 30_000);
});

describe('kept-alive connections', () => {
  it('a body refused before anyone read it does not stall the next request on the same connection', async () => {
    const t = await createTenant(roomy.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, body?: string, type = 'text/csv') =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${roomy.url}${path}`, {
          method,
          agent,
          headers: {
            authorization: `Bearer ${t.key.secret}`,
            ...(body !== undefined ? { 'content-type': type, 'content-length': String(Buffer.byteLength(body)) } : {}),
          },
        });
        req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(body);
      });
    const csv = `x,y\n${'1,2\n'.repeat(200_000)}`;
    // Refused by validation (no name) and by scope-free checks before the upload route reads a byte.
    expect(await send('POST', '/v1/datasets?task=regression&label=y', csv)).toBe(400);
    expect(await send('GET', '/v1/me')).toBe(200);
    expect(await send('POST', '/v1/datasets?name=x&task=regression&label=y&bogus=1', csv)).toBe(400);
    expect(await send('GET', '/v1/me')).toBe(200);
    expect(await send('POST', '/v1/models', 'not json at all', 'text/plain')).toBe(415);
    expect(await send('GET', '/v1/me')).toBe(200);
    agent.destroy();
  }, 30_000);
});
