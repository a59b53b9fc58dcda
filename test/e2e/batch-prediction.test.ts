import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { adminKey, createTenant, until, type TenantFixture } from '../support/factories.js';
import { Api } from '../support/http.js';
import { FAST_WORKER } from '../support/fault.js';
import { storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// Batch prediction into output files, end to end: POST /v1/jobs {output} through the real API,
// real worker processes (their inference children on wasm), PostgreSQL and Redis; the file read
// back over GET /v1/files/{id}/content. A worker is SIGKILLed half-way and another resumes.

/** Fast stalls and reconciliation, so that a killed worker's job moves on within seconds. */
const FAST = { ...FAST_WORKER, LOG_LEVEL: 'warn' };
const ROWS = 50_000;
const features = ['x1', 'x2', 'x3', 'x4'];
const wait = { headers: { Prefer: 'wait=30' } };

let server: RunningApi;
let t: TenantFixture;
let other: TenantFixture;
let big: string; // 50,000 rows
let small: string; // rows whose labels a spreadsheet would run
const workers: RunningProcess[] = [];
let firstFile: string[] = [];

async function worker(env: Record<string, string> = {}) {
  const w = await startWorker({ ...FAST, ...env });
  workers.push(w);
  return w;
}

/** The rows as a CSV upload: numbers as they are, strings quoted per RFC 4180. */
function csv(rows: Array<Record<string, unknown>>): string {
  const columns = Object.keys(rows[0]);
  const cell = (v: unknown) => (typeof v === 'string' && /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : String(v));
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\n');
}

async function dataset(tenant: TenantFixture, name: string, rows: Array<Record<string, unknown>>): Promise<string> {
  const r = await tenant.api.call('POST', `/v1/datasets?name=${name}&task=classification&label=label`, {
    raw: csv(rows),
    headers: { 'content-type': 'text/csv' },
  });
  expect(r.status).toBe(201);
  return r.body.id;
}

/** GET /v1/files/{id}/content as bytes (fetch directly: an NDJSON body is no JSON document). */
async function content(tenant: TenantFixture, fileId: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/files/${fileId}/content`, {
    headers: { authorization: `Bearer ${tenant.key.secret}`, ...headers },
  });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

async function submit(tenant: TenantFixture, body: Record<string, unknown>) {
  const r = await tenant.api.post('/v1/jobs', { type: 'inference', model: 'blobs', ...body });
  expect(r.status).toBe(202);
  return r.body.id as string;
}

async function finished(tenant: TenantFixture, id: string, timeoutMs = 120_000) {
  return until(
    `job ${id} to end`,
    async () => {
      const j = (await tenant.api.get(`/v1/jobs/${id}`)).body;
      return ['succeeded', 'failed', 'canceled'].includes(j.status) ? j : null;
    },
    timeoutMs,
    100,
  );
}

/** The job's events, every page. */
async function events(tenant: TenantFixture, id: string) {
  const out: Array<{ id: string; type: string; data: Record<string, unknown> }> = [];
  for (let after = ''; ; ) {
    const page = (await tenant.api.get(`/v1/jobs/${id}/events?limit=100${after ? `&starting_after=${after}` : ''}`)).body;
    out.push(...page.data);
    if (!page.has_more) return out;
    after = page.data.at(-1).id;
  }
}

const lines = (bytes: Buffer) => bytes.toString('utf8').split('\n').filter(Boolean);

/** RFC 4180 records (CRLF), quotes undone. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += ch;
  }
  return records;
}

beforeAll(async () => {
  server = await startApi();
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  other = await createTenant(server.url);
  const model = (await t.api.post('/v1/models', { name: 'blobs', task: 'classification' })).body.id;
  await storeVersion(t.id, model, `job_fixture_${Date.now()}`);
  big = await dataset(t, 'fifty-thousand', blobRows(ROWS, { features: 4, classes: 3, seed: 5 }));
  const labels = ['=SUM(A1:A9)', '+cmd|calc', '-2+3', '@risky', 'comma, "quoted"', 'plain'];
  small = await dataset(
    t,
    'formulas',
    blobRows(labels.length, { features: 4, classes: 3, seed: 7 }).map((r, i) => ({ ...r, label: labels[i] })),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await server?.stop();
});

describe('batch prediction into a file', () => {
  it('scores 50,000 rows into an NDJSON file in dataset order, each prediction the one a sync prediction gives', async () => {
    const w = await worker();
    const id = await submit(t, { dataset: big, output: { format: 'ndjson' } });
    const job = await finished(t, id);
    expect(job.status).toBe('succeeded');
    expect(job.output).toEqual({ format: 'ndjson', include_inputs: false });
    expect(job.progress).toMatchObject({ percent: 100, rows_done: ROWS, rows_total: ROWS });
    expect(job.result).toMatchObject({ rows: ROWS, rows_scored: ROWS, format: 'ndjson', version: 1 });
    const fileId = job.result.output_file_id as string;
    expect(fileId).toMatch(/^file_/);

    const file = (await t.api.get(`/v1/files/${fileId}`)).body;
    expect(file).toMatchObject({ object: 'file', id: fileId, purpose: 'batch_output', rows: ROWS, job_id: id });
    expect(file.content_type).toContain('application/x-ndjson');
    const days = (Date.parse(file.expires_at) - Date.parse(file.created_at)) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);

    const got = await content(t, fileId);
    expect(got.status).toBe(200);
    expect(got.bytes.length).toBe(file.bytes);
    expect(got.headers.get('content-length')).toBe(String(file.bytes));
    expect(got.headers.get('etag')).toBe(`"${file.sha256}"`);
    expect(createHash('sha256').update(got.bytes).digest('hex')).toBe(file.sha256);
    expect(got.headers.get('content-disposition')).toBe(`attachment; filename="${id}.ndjson"`);
    firstFile = lines(got.bytes);
    expect(firstFile).toHaveLength(ROWS);
    const parsed = firstFile.map((l) => JSON.parse(l));
    parsed.forEach((p, i) => {
      expect(p.row).toBe(i);
    });
    expect(parsed[0].inputs).toBeUndefined();

    // The same rows predicted synchronously, 10,000 at a time.
    const rows = blobRows(ROWS, { features: 4, classes: 3, seed: 5 }).map((r) => Object.fromEntries(features.map((f) => [f, r[f]])));
    for (let start = 0; start < ROWS; start += 10_000) {
      const sync = await t.api.post('/v1/models/blobs/predict', { inputs: rows.slice(start, start + 10_000) }, wait);
      expect(sync.status).toBe(200);
      sync.body.predictions.forEach((p: { label: string; version: number; probabilities: Record<string, number> }, i: number) => {
        const batch = parsed[start + i].prediction;
        expect(batch.label).toBe(p.label);
        expect(batch.version).toBe(p.version);
        for (const [label, prob] of Object.entries(p.probabilities)) expect(Math.abs(batch.probabilities[label] - prob)).toBeLessThan(1e-6);
      });
    }
    await w.stop();
  }, 240_000);

  it('writes CSV per RFC 4180 with the inputs echoed and spreadsheet formulas neutralised; Range, ETag and 304 work', async () => {
    const w = await worker();
    const id = await submit(t, { dataset: small, output: { format: 'csv', include_inputs: true } });
    const job = await finished(t, id);
    expect(job.status).toBe('succeeded');
    const fileId = job.result.output_file_id as string;
    const full = await content(t, fileId);
    expect(full.headers.get('content-type')).toContain('text/csv');
    const records = parseCsv(full.bytes.toString('utf8'));
    expect(records[0]).toEqual([
      'row',
      ...features,
      'label',
      'predicted_label',
      'probability_class_a',
      'probability_class_b',
      'probability_class_c',
    ]);
    expect(records.slice(1).map((r) => r[5])).toEqual(["'=SUM(A1:A9)", "'+cmd|calc", "'-2+3", "'@risky", 'comma, "quoted"', 'plain']);
    expect(records.slice(1).map((r) => r[0])).toEqual(['0', '1', '2', '3', '4', '5']);
    for (const r of records.slice(1)) {
      expect(['class_a', 'class_b', 'class_c']).toContain(r[6]);
      expect(Number(r[1])).not.toBeNaN();
      expect(Math.abs(Number(r[7]) + Number(r[8]) + Number(r[9]) - 1)).toBeLessThan(1e-4);
    }
    expect(full.bytes.toString('utf8')).toContain('"comma, ""quoted"""');

    const size = full.bytes.length;
    const etag = full.headers.get('etag')!;
    const first = await content(t, fileId, { Range: 'bytes=0-9' });
    expect(first.status).toBe(206);
    expect(first.headers.get('content-range')).toBe(`bytes 0-9/${size}`);
    expect(first.bytes).toEqual(full.bytes.subarray(0, 10));
    const middle = await content(t, fileId, { Range: 'bytes=100-' });
    expect(middle.status).toBe(206);
    expect(middle.bytes).toEqual(full.bytes.subarray(100));
    const tail = await content(t, fileId, { Range: 'bytes=-25' });
    expect(tail.headers.get('content-range')).toBe(`bytes ${size - 25}-${size - 1}/${size}`);
    expect(tail.bytes).toEqual(full.bytes.subarray(size - 25));
    const past = await content(t, fileId, { Range: `bytes=${size}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${size}`);
    expect(JSON.parse(past.bytes.toString()).error.code).toBe('range_not_satisfiable');
    expect((await content(t, fileId, { 'If-None-Match': etag })).status).toBe(304);
    await w.stop();
  }, 120_000);

  it('resumes a job from its last committed chunk on another worker after a SIGKILL half-way: every row once, none scored twice', async () => {
    const a = await worker({ BATCH_PREDICTION_CHUNK_ROWS: '500' });
    const id = await submit(t, { dataset: big, output: { format: 'ndjson' } });
    const seen = await until(
      'the job half-way',
      async () => {
        const j = (await t.api.get(`/v1/jobs/${id}`)).body;
        if (j.status !== 'running' && j.status !== 'queued') throw new Error(`the job ended before the kill: ${j.status}`);
        return (j.progress.rows_done ?? 0) >= ROWS * 0.3 ? j.progress.rows_done : 0;
      },
      120_000,
      20,
    );
    await a.stop('SIGKILL');
    await worker({ BATCH_PREDICTION_CHUNK_ROWS: '500' });
    const job = await finished(t, id);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(2);
    const resumed = job.result.resumed_from_row as number;
    // The checkpoint the kill left is at least what the job said it had done, and a whole number of chunks.
    expect(resumed).toBeGreaterThanOrEqual(seen);
    expect(resumed % 500).toBe(0);
    expect(resumed).toBeLessThan(ROWS);
    // Rows before the checkpoint were not scored again.
    expect(job.result.rows_scored).toBe(ROWS - resumed);
    const history = await events(t, id);
    const resumedEvent = history.find((e) => e.type === 'job.progress' && e.data.resumed_from_row !== undefined);
    expect(resumedEvent?.data).toMatchObject({ resumed_from_row: resumed, rows_done: resumed, rows_total: ROWS });
    expect(history.filter((e) => e.type === 'job.started')).toHaveLength(2);

    const file = await content(t, job.result.output_file_id);
    const got = lines(file.bytes).map((l) => JSON.parse(l));
    expect(got).toHaveLength(ROWS);
    got.forEach((p, i) => {
      expect(p.row).toBe(i);
    });
    // The same predictions as the job that ran through in one go.
    got.forEach((p, i) => {
      expect(p.prediction.label).toBe(JSON.parse(firstFile[i]).prediction.label);
    });
  }, 240_000);

  it('a canceled job stops and keeps the rows it finished as a file', async () => {
    // The resuming worker of the previous test (chunks of 500 rows) runs this one.
    const id = await submit(t, { dataset: big, output: { format: 'csv' } });
    await until(
      'rows scored',
      async () => {
        const j = (await t.api.get(`/v1/jobs/${id}`)).body;
        return j.status === 'running' && j.progress.rows_done > 0;
      },
      120_000,
      20,
    );
    expect((await t.api.post(`/v1/jobs/${id}/cancel`)).status).toBe(200);
    const job = await finished(t, id, 10_000);
    expect(job.status).toBe('canceled');
    const kept = job.result.rows as number;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(ROWS);
    expect(kept % 500).toBe(0);
    const file = (await t.api.get(`/v1/files/${job.result.output_file_id}`)).body;
    expect(file.rows).toBe(kept);
    const records = parseCsv((await content(t, file.id)).bytes.toString('utf8'));
    expect(records).toHaveLength(kept + 1);
    expect(records.slice(1).map((r) => Number(r[0]))).toEqual(Array.from({ length: kept }, (_, i) => i));
  }, 180_000);

  it('a job that reaches max_storage_bytes fails with the rows that fit kept as a file; an admin retry completes it', async () => {
    const before = (await t.api.get('/v1/me')).body.usage.storage_bytes as number;
    await new Api(server.url, adminKey()).patch(`/v1/admin/tenants/${t.id}`, { quotas: { max_storage_bytes: before + 120_000 } });
    try {
      const id = await submit(t, { dataset: big, output: { format: 'ndjson' } });
      const job = await finished(t, id);
      expect(job.status).toBe('failed');
      expect(job.error.code).toBe('max_storage_bytes');
      expect(job.result.rows).toBeGreaterThan(0);
      expect(job.result.rows).toBeLessThan(ROWS);
      const file = (await t.api.get(`/v1/files/${job.result.output_file_id}`)).body;
      expect(file.rows).toBe(job.result.rows);
      expect(file.bytes).toBeLessThanOrEqual(120_000);

      // With room again, an admin retry goes on after the rows the failed attempt kept, in the same file.
      await new Api(server.url, adminKey()).patch(`/v1/admin/tenants/${t.id}`, { quotas: { max_storage_bytes: 1024 ** 3 } });
      expect((await new Api(server.url, adminKey()).post(`/v1/admin/jobs/${id}/retry`)).status).toBe(200);
      const retried = await finished(t, id);
      expect(retried.status).toBe('succeeded');
      expect(retried.result).toMatchObject({
        output_file_id: file.id,
        rows: ROWS,
        resumed_from_row: file.rows,
        rows_scored: ROWS - file.rows,
      });
      const whole = await content(t, file.id);
      expect(lines(whole.bytes).map((l) => JSON.parse(l).row)).toEqual(Array.from({ length: ROWS }, (_, i) => i));
      expect(createHash('sha256').update(whole.bytes).digest('hex')).toBe(retried.result.sha256);
      expect(whole.headers.get('etag')).toBe(`"${retried.result.sha256}"`);
    } finally {
      await new Api(server.url, adminKey()).patch(`/v1/admin/tenants/${t.id}`, { quotas: { max_storage_bytes: 1024 ** 3 } });
    }
  }, 180_000);

  it('counts files in the storage quota, and deleting or expiring a file gives it back', async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await worker({ FILE_RETENTION_SECONDS: '3' });
    const storage = async () => (await t.api.get('/v1/me')).body.usage.storage_bytes as number;
    const listed = (await t.api.get('/v1/files?limit=100')).body.data.map((f: { id: string }) => f.id);
    const start = await storage();

    const kept = await finished(t, await submit(t, { dataset: small, output: { format: 'ndjson', include_inputs: true } }));
    const file = (await t.api.get(`/v1/files/${kept.result.output_file_id}`)).body;
    expect(JSON.parse(lines((await content(t, file.id)).bytes)[0]).inputs).toMatchObject({ label: '=SUM(A1:A9)' });
    await until('the expired file gone', async () => (await t.api.get(`/v1/files/${file.id}`)).status === 404, 30_000, 200);
    expect((await content(t, file.id)).status).toBe(404);
    await until('its storage given back', async () => (await storage()) === start, 10_000, 200);

    // The older files (30 days) are still there; deleting one gives its bytes back.
    const victim = listed[0] as string;
    const bytes = (await t.api.get(`/v1/files/${victim}`)).body.bytes as number;
    expect(bytes).toBeGreaterThan(0);
    const del = await t.api.call('DELETE', `/v1/files/${victim}`);
    expect(del.body).toEqual({ id: victim, object: 'file', deleted: true });
    expect((await t.api.get(`/v1/files/${victim}`)).status).toBe(404);
    await until('the deleted file given back', async () => (await storage()) === start - bytes, 10_000, 200);
  }, 120_000);
});

describe('files: isolation, scopes, bad input', () => {
  it("another tenant sees none of the tenant's files, and scopes guard reading and deleting", async () => {
    const mine = (await t.api.get('/v1/files?limit=100')).body.data as Array<{ id: string }>;
    expect(mine.length).toBeGreaterThan(0);
    const id = mine[0].id;
    expect((await other.api.get('/v1/files')).body.data).toEqual([]);
    expect((await other.api.get(`/v1/files/${id}`)).status).toBe(404);
    expect((await content(other, id)).status).toBe(404);
    expect((await other.api.call('DELETE', `/v1/files/${id}`)).status).toBe(404);
    expect((await t.api.get(`/v1/files/${id}`)).status).toBe(200);

    const admin = new Api(server.url, adminKey());
    const reader = (await admin.post(`/v1/admin/tenants/${t.id}/api-keys`, { name: 'reader', scopes: ['jobs:read'] })).body.secret;
    const noJobs = (await admin.post(`/v1/admin/tenants/${t.id}/api-keys`, { name: 'datasets', scopes: ['datasets:read'] })).body.secret;
    expect((await new Api(server.url, reader).get(`/v1/files/${id}`)).status).toBe(200);
    expect((await new Api(server.url, reader).call('DELETE', `/v1/files/${id}`)).status).toBe(403);
    expect((await new Api(server.url, noJobs).get('/v1/files')).status).toBe(403);
    expect((await t.api.get('/v1/files/not-a-file')).status).toBe(400);
  });

  it('refuses bad batch jobs with a 400 naming the problem, and writes no job', async () => {
    const count = async () => (await t.api.get('/v1/jobs?limit=100')).body.data.length;
    const before = await count();
    const bad = async (body: Record<string, unknown>, code: string, param?: string) => {
      const r = await t.api.post('/v1/jobs', { type: 'inference', model: 'blobs', ...body });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe(code);
      if (param) expect(r.body.error.param).toBe(param);
      return r.body.error.message as string;
    };
    await bad({ dataset: small, output: { format: 'xlsx' } }, 'parameter_invalid');
    await bad({ dataset: small, output: { format: 'csv', include_inputs: 'yes' } }, 'parameter_invalid');
    await bad({ dataset: small, output: { format: 'csv', compress: true } }, 'parameter_unknown');
    await bad({ inputs: [{ x1: 1, x2: 2, x3: 3, x4: 4 }], output: { format: 'csv' } }, 'parameter_invalid', 'dataset');
    await bad({ dataset: small, output: { format: 'csv' }, explain: true }, 'parameter_invalid', 'explain');
    // A regression dataset for a classifier.
    const reg = await t.api.post('/v1/datasets', {
      name: 'reg',
      task: 'regression',
      label: 'y',
      records: [
        { x1: 1, x2: 2, x3: 3, x4: 4, y: 1 },
        { x1: 2, x2: 3, x3: 4, x4: 5, y: 2 },
      ],
    });
    await bad({ dataset: reg.body.id, output: { format: 'csv' } }, 'task_mismatch', 'dataset');
    // A dataset without the version's columns.
    const wrong = await t.api.post('/v1/datasets', {
      name: 'wrong-columns',
      task: 'classification',
      label: 'label',
      records: [
        { x1: 1, height: 2, weight: 3, label: 'a' },
        { x1: 2, height: 3, weight: 4, label: 'b' },
      ],
    });
    const message = await bad({ dataset: wrong.body.id, output: { format: 'ndjson' } }, 'dataset_columns_mismatch', 'dataset');
    expect(message).toContain("'x2', 'x3', 'x4'");
    expect(message).toContain("'height', 'weight'");
    // Another tenant's dataset is not there for this one.
    const theirs = await dataset(other, 'theirs', blobRows(20, { features: 4, classes: 3 }));
    const r = await t.api.post('/v1/jobs', {
      type: 'inference',
      model: 'blobs',
      dataset: theirs,
      output: { format: 'csv', include_inputs: true },
    });
    expect(r.status).toBe(404);
    expect(await count()).toBe(before);
  });
});
