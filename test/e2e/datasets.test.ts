import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { type RunningApi, startApi } from '../support/processes.js';

let server: RunningApi;
let t: TenantFixture;

beforeAll(async () => {
  server = await startApi();
  t = await createTenant(server.url, { quotas: { requests_per_minute: 10_000 } });
});
afterAll(() => server?.stop());

const csv = (text: string, q = 'name=iris&task=classification&label=species') =>
  t.api.call('POST', `/v1/datasets?${q}`, { raw: text, headers: { 'content-type': 'text/csv' } });
const ndjson = (text: string, q = 'name=n&task=regression&label=y') =>
  t.api.call('POST', `/v1/datasets?${q}`, { raw: text, headers: { 'content-type': 'application/x-ndjson' } });

async function storedRows(id: string): Promise<number> {
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  const { rows } = await db.query('SELECT coalesce(sum(rows), 0)::int AS n FROM dataset_chunks WHERE dataset_id = $1', [id]);
  await db.end();
  return rows[0].n;
}

describe('POST /v1/datasets', () => {
  it('takes JSON records, infers columns and counts classes', async () => {
    const records = [
      { a: 1, b: 2.5, label: 'x' },
      { a: 2, b: 0.5, label: 'y' },
      { a: 3, b: 1.5, label: 'x' },
    ];
    const r = await t.api.post('/v1/datasets', { name: 'tiny', task: 'classification', records });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ object: 'dataset', name: 'tiny', task: 'classification', label: 'label', format: 'json', rows: 3 });
    expect(r.body.id).toMatch(/^ds_/);
    expect(r.body.columns).toEqual([
      { name: 'a', type: 'number', role: 'feature' },
      { name: 'b', type: 'number', role: 'feature' },
      { name: 'label', type: 'category', role: 'label', class_counts: { x: 2, y: 1 } },
    ]);
    expect(r.body.sha256).toBe(createHash('sha256').update(JSON.stringify(records)).digest('hex'));
    expect(r.body.bytes).toBe(Buffer.byteLength(JSON.stringify(records)));
    expect(await storedRows(r.body.id)).toBe(3);
  });

  it('takes CSV with quoted fields holding commas and newlines', async () => {
    const text = 'text,label,source\n"great, really great",pos,web\n"bad\nvery bad",neg,"mail, inbox"\nfine,pos,web\n';
    const r = await csv(text, 'name=reviews&task=text-classification&label=label&text_field=text');
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ rows: 3, format: 'csv', text_field: 'text' });
    expect(r.body.columns).toEqual([
      { name: 'text', type: 'text', role: 'text' },
      { name: 'label', type: 'category', role: 'label', class_counts: { neg: 1, pos: 2 } },
      { name: 'source', type: 'string', role: 'ignored' },
    ]);
    expect(r.body.sha256).toBe(createHash('sha256').update(text).digest('hex'));
    expect(r.body.bytes).toBe(Buffer.byteLength(text));
  });

  it('takes NDJSON for regression', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ x1: i, x2: i * 2, y: 3 * i + 1 })).join('\n');
    const r = await ndjson(lines);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ task: 'regression', label: 'y', rows: 50, format: 'ndjson' });
    expect(r.body.columns[2]).toEqual({ name: 'y', type: 'number', role: 'label' });
  });

  it('streams a large CSV into chunks', async () => {
    const header = 'f1,f2,f3,f4,label\n';
    const body = header + Array.from({ length: 20_000 }, (_, i) => `${i},${i % 7},${(i * 13) % 17},${i / 3},c${i % 3}`).join('\n');
    const r = await csv(body, 'name=big&task=classification&label=label');
    expect(r.status).toBe(201);
    expect(r.body.rows).toBe(20_000);
    expect(await storedRows(r.body.id)).toBe(20_000);
  });

  const refusals: Array<[string, () => Promise<{ status: number; body: any }>, number, RegExp, string | null]> = [
    ['malformed CSV (unclosed quote)', () => csv('a,species\n1,"x\n2,y\n'), 400, /quoted field is never closed/, null],
    ['ragged CSV rows', () => csv('a,b,species\n1,2,x\n3,y\n'), 400, /line 3: ragged/, null],
    ['a missing label column', () => csv('a,b,kind\n1,2,x\n'), 400, /label column 'species' is not in the data/, 'label'],
    ['an empty label', () => csv('a,species\n1,x\n2,\n3,y\n'), 400, /line 3: the label 'species' is empty/, 'species'],
    ['a non-numeric feature', () => csv('a,b,species\n1,2,x\n3,abc,y\n'), 400, /line 3: column 'b' must be a number, got "abc"/, 'b'],
    ['an empty dataset', () => csv('a,species\n'), 400, /empty/, null],
    ['a single class', () => csv('a,species\n1,x\n2,x\n'), 400, /single class/, 'label'],
    ['malformed NDJSON', () => ndjson('{"x1":1,"y":2}\n{"x1":2,\n'), 400, /line 2: not valid JSON/, null],
    [
      'ragged NDJSON records',
      () => ndjson('{"x1":1,"y":2}\n{"x2":2,"y":3}\n'),
      400,
      /line 2: ragged record: missing column 'x1'; unknown column 'x2'/,
      null,
    ],
    ['a non-numeric regression label', () => ndjson('{"x1":1,"y":"high"}\n'), 400, /column 'y' must be a number/, null],
    [
      'JSON records that are not objects',
      () => t.api.post('/v1/datasets', { name: 'j', task: 'classification', records: [1, 2] }),
      400,
      /records\[0\]: a record must be an object/,
      null,
    ],
    [
      'a text dataset without its text column',
      () => csv('body,label\nhi,a\nyo,b\n', 'name=t&task=text-classification&label=label'),
      400,
      /text column 'text' is not in the data/,
      'text_field',
    ],
    [
      'an unsupported content type',
      () => t.api.call('POST', '/v1/datasets?name=x&task=regression', { raw: '<xml/>', headers: { 'content-type': 'application/xml' } }),
      415,
      /application\/xml/,
      null,
    ],
    ['an unknown task', () => csv('a,species\n1,x\n', 'name=x&task=clustering&label=species'), 400, /task/, 'task'],
    ['a CSV without a name', () => csv('a,species\n1,x\n', 'task=classification&label=species'), 400, /name/, 'name'],
  ];

  it.each(refusals)('refuses %s with a message naming the line or column', async (_what, call, status, message, param) => {
    const before = (await t.api.get('/v1/datasets?limit=100')).body.data.length;
    const r = await call();
    expect(r.status).toBe(status);
    expect(r.body.error.message).toMatch(message);
    if (param) expect(r.body.error.param).toBe(param);
    // Nothing half-stored.
    expect((await t.api.get('/v1/datasets?limit=100')).body.data.length).toBe(before);
  });

  it('refuses rows over max_dataset_rows and bytes over the storage quota with 413, storing nothing', async () => {
    const small = await createTenant(server.url, { quotas: { max_dataset_rows: 10, max_storage_bytes: 2_000 } });
    const rows = (n: number) => `a,label\n${Array.from({ length: n }, (_, i) => `${i},${i % 2}`).join('\n')}`;
    const tooMany = await small.api.call('POST', '/v1/datasets?name=x&task=classification', {
      raw: rows(11),
      headers: { 'content-type': 'text/csv' },
    });
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error).toMatchObject({ type: 'quota_exceeded_error', code: 'max_dataset_rows' });
    const ok = await small.api.call('POST', '/v1/datasets?name=x&task=classification', {
      raw: rows(10),
      headers: { 'content-type': 'text/csv' },
    });
    expect(ok.status).toBe(201);
    const big = `a,label\n${Array.from({ length: 10 }, (_, i) => `${'9'.repeat(200)},${i % 2}`).join('\n')}`;
    const tooBig = await small.api.call('POST', '/v1/datasets?name=big&task=classification', {
      raw: big,
      headers: { 'content-type': 'text/csv' },
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('max_storage_bytes');
    const list = await small.api.get('/v1/datasets');
    expect(list.body.data.map((d: { id: string }) => d.id)).toEqual([ok.body.id]);
    expect((await small.api.get('/v1/me')).body.usage.storage_bytes).toBe(ok.body.bytes);
  });
});

describe('GET, list and DELETE /v1/datasets', () => {
  it('lists newest first, filters by task, gets, and deletes (giving storage back)', async () => {
    const u = await createTenant(server.url);
    const a = await u.api.post('/v1/datasets', { name: 'a', task: 'regression', label: 'y', records: [{ x: 1, y: 2 }] });
    const b = await u.api.post('/v1/datasets', {
      name: 'b',
      task: 'classification',
      records: [
        { x: 1, label: 'p' },
        { x: 2, label: 'q' },
      ],
    });
    expect((await u.api.get('/v1/datasets')).body.data.map((d: { id: string }) => d.id)).toEqual([b.body.id, a.body.id]);
    expect((await u.api.get('/v1/datasets?task=regression')).body.data.map((d: { id: string }) => d.id)).toEqual([a.body.id]);
    expect((await u.api.get(`/v1/datasets/${a.body.id}`)).body).toEqual(a.body);
    expect((await u.api.get('/v1/me')).body.usage.storage_bytes).toBe(a.body.bytes + b.body.bytes);
    expect((await u.api.delete(`/v1/datasets/${a.body.id}`)).body).toEqual({ id: a.body.id, object: 'dataset', deleted: true });
    expect((await u.api.get(`/v1/datasets/${a.body.id}`)).status).toBe(404);
    expect(await storedRows(a.body.id)).toBe(0);
    expect((await u.api.get('/v1/me')).body.usage.storage_bytes).toBe(b.body.bytes);
  });

  it('keeps tenants apart: another tenant’s dataset answers 404 on every route', async () => {
    const other = await createTenant(server.url);
    const mine = await t.api.post('/v1/datasets', { name: 'private', task: 'regression', label: 'y', records: [{ x: 1, y: 2 }] });
    const unknown = await other.api.get('/v1/datasets/ds_doesnotexist000');
    const foreign = await other.api.get(`/v1/datasets/${mine.body.id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe(unknown.body.error.code);
    expect((await other.api.delete(`/v1/datasets/${mine.body.id}`)).status).toBe(404);
    expect((await other.api.get('/v1/datasets')).body.data).toEqual([]);
    expect((await other.api.get(`/v1/datasets?starting_after=${mine.body.id}`)).status).toBe(400);
    expect((await t.api.get(`/v1/datasets/${mine.body.id}`)).status).toBe(200);
  });

  it('needs the datasets scopes', async () => {
    const k = await t.api.post('/v1/api-keys', { name: 'models only', scopes: ['models:read'] });
    const api = t.api.as(k.body.secret);
    expect((await api.get('/v1/datasets')).body.error.message).toContain('datasets:read');
    const w = await api.post('/v1/datasets', { name: 'x', task: 'regression', records: [] });
    expect(w.status).toBe(403);
    expect(w.body.error.message).toContain('datasets:write');
  });
});
