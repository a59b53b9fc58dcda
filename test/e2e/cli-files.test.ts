import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { adminKey, createTenant, type TenantFixture } from '../support/factories.js';
import { Api } from '../support/http.js';
import { storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// The real `aiaas` binary (bin/aiaas.mjs → dist/) against a real API and worker: batch predictions
// into files (`predict --dataset … --out`) and `files list/show/download/delete`. The model's
// version is stored directly (storeVersion), so no training job runs.
let server: RunningApi;
let worker: RunningProcess;
let t: TenantFixture;
let dataset: string; // 300 rows
let big: string; // 1,000 rows
const dir = mkdtempSync(join(tmpdir(), 'aiaas-cli-files-'));
const labels = ['class_a', 'class_b', 'class_c'];

interface Ran {
  code: number | null;
  stdout: string;
  bytes: Buffer;
  stderr: string;
}

/** Runs `aiaas ARGS` to the end; stdout and stderr are pipes (not a terminal). */
function aiaas(args: string[]): Promise<Ran> {
  const child = spawn(process.execPath, ['bin/aiaas.mjs', ...args], {
    env: { ...process.env, NODE_OPTIONS: '', AIAAS_URL: server.url, AIAAS_API_KEY: t.key.secret, AIAAS_ADMIN_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString('utf8'), bytes, stderr });
    }),
  );
}

async function json<T = any>(args: string[]): Promise<T> {
  const r = await aiaas([...args, '--json']);
  if (r.code !== 0) throw new Error(`aiaas ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function csvOf(rows: Array<Record<string, unknown>>): string {
  const header = Object.keys(rows[0]);
  return `${[header.join(','), ...rows.map((r) => header.map((h) => r[h]).join(','))].join('\n')}\n`;
}

const jobCount = async () => (await t.api.get('/v1/jobs?type=inference&limit=100')).body.data.length as number;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  server = await startApi();
  // Chunks of 100 rows: a job of 1,000 rows commits ten times.
  worker = await startWorker({ TF_BACKEND: 'wasm', BATCH_PREDICTION_CHUNK_ROWS: '100' });
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  const model = (await t.api.post('/v1/models', { name: 'blobs', task: 'classification' })).body.id;
  await storeVersion(t.id, model, `job_fixture_${Date.now()}`);
  const small = join(dir, 'blobs.csv');
  writeFileSync(small, csvOf(blobRows(300, { features: 4, classes: 3, seed: 4 })));
  dataset = (await json(['datasets', 'upload', small, '--task', 'classification'])).id;
  const large = join(dir, 'large.csv');
  writeFileSync(large, csvOf(blobRows(1000, { features: 4, classes: 3, seed: 8 })));
  big = (await json(['datasets', 'upload', large, '--task', 'classification'])).id;
}, 120_000);
afterAll(async () => {
  await worker?.stop();
  await server?.stop();
});

describe('aiaas predict --dataset', () => {
  it('scores every row of a dataset into a CSV file: progress in rows, then the header and every row in order', async () => {
    const out = join(dir, 'scores.csv');
    const r = await aiaas(['predict', '--model', 'blobs', '--dataset', dataset, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job_\w+: inference of mdl_\w+ on ds_\w+$/m);
    expect(r.stdout).toMatch(/^rows 300\/300 {2}100% {2}eta \S+$/m);
    expect(r.stdout).toMatch(/^succeeded$/m);
    expect(r.stdout).toMatch(new RegExp(`^wrote ${out}: 300 rows, [\\d.]+ KB \\(file_\\w+, version 1 of mdl_\\w+\\)$`, 'm'));

    const records = readFileSync(out, 'utf8')
      .split('\r\n')
      .filter(Boolean)
      .map((l) => l.split(','));
    expect(records[0]).toEqual(['row', 'predicted_label', ...labels.map((l) => `probability_${l}`)]);
    expect(records).toHaveLength(301);
    expect(records.slice(1).map((rec) => Number(rec[0]))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    for (const rec of records.slice(1)) {
      expect(labels).toContain(rec[1]);
      expect(Math.abs(Number(rec[2]) + Number(rec[3]) + Number(rec[4]) - 1)).toBeLessThan(1e-4);
    }
    // Written through a temporary file beside it, which is gone.
    expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('writes NDJSON with the inputs for --include-inputs, and prints the job, the file and the path under --json', async () => {
    const out = join(dir, 'scores.jsonl');
    const r = await json(['predict', '--model', 'blobs', '--dataset', dataset, '--out', out, '--include-inputs', '--version', '1']);
    expect(r.path).toBe(out);
    expect(r.job).toMatchObject({ type: 'inference', status: 'succeeded', output: { format: 'ndjson', include_inputs: true } });
    expect(r.job.result).toMatchObject({ output_file_id: r.file.id, rows: 300, format: 'ndjson', version: 1 });
    expect(r.file).toMatchObject({ object: 'file', rows: 300, job_id: r.job.id });
    const bytes = readFileSync(out);
    expect([bytes.length, sha256(bytes)]).toEqual([r.file.bytes, r.file.sha256]);
    const lines = bytes
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(300);
    expect(lines[0]).toMatchObject({ row: 0, prediction: { version: 1 }, inputs: { x1: expect.any(Number), label: expect.any(String) } });
    expect(labels).toContain(lines[299].prediction.label);
  });

  it('names the error and the partial file of a job that fails part-way, and writes nothing to --out', async () => {
    const admin = new Api(server.url, adminKey());
    const before = (await t.api.get('/v1/me')).body.usage.storage_bytes as number;
    // Room for a few chunks of 100 rows, not for ten.
    await admin.patch(`/v1/admin/tenants/${t.id}`, { quotas: { max_storage_bytes: before + 40_000 } });
    try {
      const out = join(dir, 'too-big.ndjson');
      const r = await aiaas(['predict', '--model', 'blobs', '--dataset', big, '--out', out]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^failed: .*max_storage_bytes.* \(max_storage_bytes\)$/m);
      expect(r.stderr).toMatch(/^error: job_\w+ failed: The output file reached the tenant's max_storage_bytes/m);
      const kept =
        /^ {2}the rows it finished are kept: (file_\w+) holds (\d+) of 1000 rows \(aiaas files download file_\w+ --out .+\)$/m.exec(
          r.stderr,
        );
      expect(kept).not.toBeNull();
      expect(Number(kept![2])).toBeLessThan(1000);
      expect(existsSync(out)).toBe(false);
      expect((await json(['files', 'show', kept![1]])).rows).toBe(Number(kept![2]));
    } finally {
      await admin.patch(`/v1/admin/tenants/${t.id}`, { quotas: { max_storage_bytes: 1024 ** 3 } });
    }
  });
});

describe('aiaas files', () => {
  it('lists, shows, downloads (to a file and to stdout, the bytes of its sha256) and deletes a file', async () => {
    const list = await json(['files', 'list']);
    expect(list).toMatchObject({ object: 'list', has_more: false });
    expect(list.data.length).toBeGreaterThanOrEqual(3);
    const csv = list.data.find((f: { filename: string }) => f.filename.endsWith('.csv'));
    expect(csv).toMatchObject({ object: 'file', purpose: 'batch_output', rows: 300, content_type: expect.stringContaining('text/csv') });

    const table = await aiaas(['files', 'list']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+FILENAME\s+ROWS\s+SIZE\s+JOB\s+CREATED\s+EXPIRES$/m);
    expect(table.stdout).toMatch(new RegExp(`^${csv.id}\\s+job_\\w+\\.csv\\s+300\\s+[\\d.]+ KB\\s+job_\\w+\\s+`, 'm'));
    expect(await json(['files', 'get', csv.id])).toEqual(csv);
    const shown = await aiaas(['files', 'show', csv.id]);
    expect(shown.stdout).toMatch(new RegExp(`^sha256\\s+${csv.sha256}$`, 'm'));

    const out = join(dir, 'downloaded.csv');
    const saved = await aiaas(['files', 'download', csv.id, '--out', out]);
    expect([saved.code, saved.stderr]).toEqual([0, '']);
    expect(saved.stdout).toMatch(new RegExp(`^wrote ${out}: 300 rows, [\\d.]+ KB \\(${csv.id}\\)\\n$`));
    expect(readFileSync(out).equals(readFileSync(join(dir, 'scores.csv')))).toBe(true);
    const printed = await aiaas(['files', 'download', csv.id]);
    expect(printed.code).toBe(0);
    expect([printed.bytes.length, sha256(printed.bytes)]).toEqual([csv.bytes, csv.sha256]);
    expect(printed.bytes.equals(readFileSync(out))).toBe(true);

    const deleted = await aiaas(['files', 'delete', csv.id]);
    expect([deleted.code, deleted.stdout]).toEqual([0, `deleted ${csv.id}\n`]);
    const gone = await aiaas(['files', 'get', csv.id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/\(invalid_request_error, resource_missing, param id, HTTP 404\)/);
    expect((await json(['files', 'list'])).data.map((f: { id: string }) => f.id)).not.toContain(csv.id);
  });
});

describe('mistakes', () => {
  it('refuses bad arguments with a message that names them and exit 2, before any job is submitted', async () => {
    const jobs = await jobCount();
    const out = join(dir, 'never.csv');
    const cases: Array<[string[], string]> = [
      [['--dataset', dataset, '--out', out, '--format', 'xlsx'], "error: --format must be one of csv, ndjson, not 'xlsx'"],
      [['--dataset', dataset], 'error: --dataset needs --out FILE, where the predictions are written (.csv: CSV, else NDJSON)'],
      [
        ['--dataset', dataset, '--out', join(dir, 'no', 'such', 'x.csv')],
        `error: cannot write ${join(dir, 'no', 'such', 'x.csv')}: no such folder`,
      ],
      [['--dataset', dataset, '--out', dir], `error: ${dir} is a folder: --out names the file to write`],
      [['--out', out, join(dir, 'rows.json')], 'error: --out goes with --dataset (a batch prediction)'],
      [['--dataset', dataset, '--out', out, '--explain'], 'error: --explain does not apply to --dataset'],
      [[], 'error: predict needs INPUT.json, - (stdin) or image files, or --dataset ds_… --out FILE'],
    ];
    for (const [args, message] of cases) {
      const r = await aiaas(['predict', '--model', 'blobs', ...args]);
      expect([r.code, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toContain(message);
    }
    expect(existsSync(out)).toBe(false);
    expect(await jobCount()).toBe(jobs);
  });

  it('exits 1 with the API’s words for a file that is not there or a model that cannot score the dataset', async () => {
    const missing = await aiaas(['files', 'download', 'file_doesnotexist']);
    expect([missing.code, missing.stdout]).toEqual([1, '']);
    expect(missing.stderr).toMatch(/^error: .*file_doesnotexist/m);
    expect(missing.stderr).toMatch(/^ {2}request id: req_\w+$/m);
    const wrong = join(dir, 'wrong.csv');
    writeFileSync(wrong, 'height,weight,label\n1,2,a\n2,3,b\n');
    const ds = (await json(['datasets', 'upload', wrong, '--task', 'classification'])).id;
    const r = await aiaas(['predict', '--model', 'blobs', '--dataset', ds, '--out', join(dir, 'wrong-scores.csv')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Dataset 'ds_\w+' lacks the columns 'x1', 'x2', 'x3', 'x4' that version 1 reads/m);
    expect(r.stderr).toContain('dataset_columns_mismatch, param dataset, HTTP 400');
    expect(existsSync(join(dir, 'wrong-scores.csv'))).toBe(false);
  });
});
