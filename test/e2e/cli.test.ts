import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { adminKey, createTenant, sleep, type TenantFixture, until } from '../support/factories.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// The real `aiaas` binary (bin/aiaas.mjs → dist/) against a real API and worker.
let server: RunningApi;
let worker: RunningProcess;
let t: TenantFixture;
const dir = mkdtempSync(join(tmpdir(), 'aiaas-cli-'));

beforeAll(async () => {
  server = await startApi({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  worker = await startWorker({ TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '2' });
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000, max_concurrent_jobs: 4 } });
}, 60_000);
afterAll(async () => {
  await worker?.stop();
  await server?.stop();
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cliEnv(key?: string): NodeJS.ProcessEnv {
  return { ...process.env, NODE_OPTIONS: '', AIAAS_URL: server.url, AIAAS_API_KEY: key ?? t.key.secret, AIAAS_ADMIN_KEY: '' };
}

/** Runs `aiaas ARGS` to the end; stdout and stderr are pipes (not a terminal). */
function aiaas(args: string[], opts: { key?: string; stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  const child = spawn(process.execPath, ['bin/aiaas.mjs', ...args], {
    env: { ...cliEnv(opts.key), ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(opts.stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function json<T = any>(args: string[], opts: { key?: string; stdin?: string } = {}): Promise<T> {
  const r = await aiaas([...args, '--json'], opts);
  if (r.code !== 0) throw new Error(`aiaas ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function csvOf(rows: Array<Record<string, unknown>>): string {
  const header = Object.keys(rows[0]);
  return `${[header.join(','), ...rows.map((r) => header.map((h) => r[h]).join(','))].join('\n')}\n`;
}

const rows = blobRows(240, { features: 4, classes: 2, seed: 9 });
const csv = join(dir, 'blobs.csv');
writeFileSync(csv, csvOf(rows));

describe('the tenant tour', () => {
  let dataset: string;

  it('uploads a CSV, trains with --watch (epochs advancing, then the metrics), evaluates and predicts', async () => {
    const ds = await json(['datasets', 'upload', csv, '--task', 'classification', '--label', 'label']);
    expect(ds).toMatchObject({ object: 'dataset', name: 'blobs', rows: 240, format: 'csv' });
    dataset = ds.id;
    expect(await json(['models', 'create', 'blobs', '--task', 'classification'])).toMatchObject({ object: 'model', name: 'blobs' });

    const train = await aiaas(['train', '--model', 'blobs', '--dataset', dataset, '--epochs', '6', '--seed', '3', '--watch']);
    expect(train.stderr).toBe('');
    expect(train.code).toBe(0);
    const epochs = [...train.stdout.matchAll(/^epoch (\d+)\/6 {2}loss \d[\d.e-]* {2}val_loss \d[\d.e-]*.* {2}eta \S+$/gm)].map((m) =>
      Number(m[1]),
    );
    expect(epochs).toEqual([1, 2, 3, 4, 5, 6]);
    const lines = train.stdout.split('\n');
    expect(lines.indexOf('queued')).toBeLessThan(lines.findIndex((l) => l.startsWith('started')));
    expect(lines.findIndex((l) => l.startsWith('epoch 6/6'))).toBeLessThan(lines.indexOf('succeeded'));
    expect(train.stdout).toMatch(/^status\s+succeeded$/m);
    expect(train.stdout).toMatch(/^METRIC\s+VALUE$/m);
    expect(train.stdout).toMatch(/^accuracy\s+[01](\.\d+)?$/m);

    const evaluated = await json(['evaluate', '--model', 'blobs', '--dataset', dataset]);
    expect(evaluated).toMatchObject({ type: 'evaluation', status: 'succeeded', version: 1 });
    expect(evaluated.result.metrics.accuracy).toBeGreaterThan(0.8);
    const shown = await aiaas(['evaluate', '--model', 'blobs', '--dataset', dataset, '--version', '1']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^macro_f1\s+/m);
    expect(shown.stdout).toContain('confusion matrix');

    const inputs = rows.slice(0, 3).map(({ label: _l, ...x }) => x);
    const predicted = await json(['predict', '--model', 'blobs', '-'], { stdin: JSON.stringify(inputs) });
    expect(predicted.predictions).toHaveLength(3);
    expect(predicted.predictions[0]).toMatchObject({ version: 1, label: expect.stringMatching(/^class_/) });
    const file = join(dir, 'one.json');
    writeFileSync(file, JSON.stringify(inputs[0]));
    const table = await aiaas(['predict', '--model', 'blobs', file]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ROW\s+PREDICTION\s+PROBABILITY\s+VERSION\n1\s+class_[ab]\s+0\.\d+\s+1\n$/);
  });

  it('prints parseable JSON from every list and show command under --json', async () => {
    const job = (await json(['jobs', 'list', '--type', 'training'])).data[0];
    expect(job).toMatchObject({ object: 'job', type: 'training', status: 'succeeded' });
    for (const args of [
      ['me'],
      ['datasets', 'list'],
      ['datasets', 'show', dataset],
      ['models', 'list'],
      ['models', 'show', 'blobs'],
      ['models', 'show', 'blobs', '--version', '1'],
      ['jobs', 'show', job.id],
      ['jobs', 'logs', job.id],
      ['keys', 'list'],
      ['webhooks', 'list'],
    ]) {
      const parsed = await json(args);
      expect(typeof parsed).toBe('object');
    }
    const logs = await json(['jobs', 'logs', job.id]);
    expect(logs.data.map((e: { type: string }) => e.type)).toEqual([
      'job.queued',
      'job.started',
      ...Array(6).fill('job.progress'),
      'job.succeeded',
    ]);
    expect((await json(['models', 'show', 'blobs'])).versions).toHaveLength(1);

    // --follow --json: one event per line (NDJSON), ending with the terminal one
    const followed = await aiaas(['jobs', 'logs', job.id, '--follow', '--json']);
    expect(followed.code).toBe(0);
    const events = followed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(events.map((e) => e.type)).toEqual(logs.data.map((e: { type: string }) => e.type));

    // --watch --json: no progress drawn, the finished job printed
    const watched = await json(['train', '--model', 'blobs', '--dataset', dataset, '--epochs', '2', '--watch']);
    expect(watched).toMatchObject({ object: 'job', status: 'succeeded', version: 2 });
  });

  it('cancels a running job', async () => {
    const big = join(dir, 'big.csv');
    writeFileSync(big, csvOf(blobRows(3000, { features: 8, classes: 3, seed: 1 })));
    const ds = await json(['datasets', 'upload', big, '--task', 'classification']);
    await json(['models', 'create', 'long', '--task', 'classification']);
    const job = await json(['train', '--model', 'long', '--dataset', ds.id, '--epochs', '500', '--batch-size', '16']);
    expect(job.status).toBe('queued');
    // running first: a cancel of a queued job would pass without any worker stopping anything
    await until('the job running', async () => (await json(['jobs', 'show', job.id])).status === 'running', 60_000);
    const canceled = await aiaas(['jobs', 'cancel', job.id]);
    expect(canceled.code).toBe(0);
    expect(canceled.stdout).toMatch(new RegExp(`^${job.id}: (running \\(stopping\\)|canceled)$`, 'm'));
    await until('the job canceled', async () => (await json(['jobs', 'show', job.id])).status === 'canceled', 10_000);
    const again = await aiaas(['jobs', 'cancel', job.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/request id: req_/);
  });

  /** Starts `train --watch` on a long job, presses Ctrl-C once epochs show, and answers the prompt. */
  async function interruptWatch(model: string, answer: string) {
    const big = join(dir, `${model}.csv`);
    writeFileSync(big, csvOf(blobRows(3000, { features: 8, classes: 3, seed: 2 })));
    const ds = await json(['datasets', 'upload', big, '--task', 'classification']);
    await json(['models', 'create', model, '--task', 'classification']);
    const child = spawn(
      process.execPath,
      ['bin/aiaas.mjs', 'train', '--model', model, '--dataset', ds.id, '--epochs', '500', '--batch-size', '16', '--watch'],
      { env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    for (let i = 0; i < 300 && !/^epoch 2\/500/m.test(stdout); i++) await sleep(100);
    child.kill('SIGINT');
    for (let i = 0; i < 50 && !stderr.includes('[y/N]'); i++) await sleep(100);
    if (!stderr.includes('[y/N]')) child.kill('SIGKILL');
    expect(stderr).toMatch(/Cancel job_\w+\? \[y\/N\]/);
    child.stdin.end(answer);
    const code = await Promise.race([closed, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 20_000).unref())]);
    if (code === 'still running') {
      child.kill('SIGKILL');
      throw new Error(`still running after the answer:\n${stdout.slice(-600)}\n--- stderr:\n${stderr}`);
    }
    return { code, stdout, stderr, jobId: /^(job_\w+):/m.exec(stdout)![1] };
  }

  it('asks on Ctrl-C whether to cancel the watched job, and cancels it on yes', async () => {
    const r = await interruptWatch('interrupted', 'y\n');
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/^canceled$/m);
    expect(r.stdout).toMatch(/^status\s+canceled$/m);
  }, 90_000);

  it('leaves the job running when the answer is no', async () => {
    const r = await interruptWatch('detached', 'n\n');
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`${r.jobId} goes on; see it with: aiaas jobs show ${r.jobId}`);
    expect((await json(['jobs', 'show', r.jobId])).status).toBe('running');
    await json(['jobs', 'cancel', r.jobId]);
  }, 90_000);
});

describe('errors', () => {
  it('prints the API message and request id for a malformed CSV, and exits 1', async () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'x1,x2,label\n1,2,a\n3,oops,b\n4,5,a\n');
    const r = await aiaas(['datasets', 'upload', bad, '--task', 'classification']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: .*(x2|line 3)/m);
    expect(r.stderr).toMatch(/invalid_request_error, \w+, .*HTTP 400/);
    expect(r.stderr).toMatch(/^ {2}request id: req_\w+$/m);

    const noLabel = await aiaas(['datasets', 'upload', csv, '--task', 'classification', '--label', 'churned']);
    expect(noLabel.code).toBe(1);
    expect(noLabel.stderr).toMatch(
      /^error: The label column 'churned' is not in the data \(columns: x1, x2, x3, x4, label\)\n {2}\(invalid_request_error, label_missing, param label, HTTP 400\)\n {2}request id: req_\w+\n$/,
    );

    const j = await aiaas(['datasets', 'upload', bad, '--task', 'classification', '--json']);
    expect(j.code).toBe(1);
    const { error } = JSON.parse(j.stderr);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', request_id: expect.stringMatching(/^req_/) });
  });

  it('says so and exits 2 for a missing file, a bad option or no key', async () => {
    const missing = await aiaas(['datasets', 'upload', join(dir, 'nope.csv'), '--task', 'classification']);
    expect([missing.code, missing.stderr.trim()]).toEqual([2, `error: cannot read ${join(dir, 'nope.csv')}: no such file`]);
    const badTask = await aiaas(['datasets', 'upload', csv, '--task', 'clustering']);
    expect(badTask.code).toBe(2);
    expect(badTask.stderr).toContain('--task must be one of');
    const unknown = await aiaas(['models', 'frobnicate']);
    expect(unknown.code).toBe(2);
    const noKey = await aiaas(['me'], { env: { AIAAS_API_KEY: '' } });
    expect([noKey.code, noKey.stderr.trim()]).toEqual([2, 'error: no API key: set AIAAS_API_KEY, or pass --api-key']);
  });

  it('exits 1 with the API’s words for a refused key', async () => {
    const r = await aiaas(['me'], { key: 'aik_doesnotexist000000000000' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/authentication_error/);
    expect(r.stderr).toMatch(/request id: req_/);
  });
});

describe('webhooks and keys', () => {
  it('creates, lists and revokes', async () => {
    const hook = await json(['webhooks', 'create', 'http://127.0.0.1:9/hook', '--events', 'job.succeeded,job.failed']);
    expect(hook.secret).toMatch(/^whsec_/);
    expect((await json(['webhooks', 'list'])).data.map((w: { id: string }) => w.id)).toContain(hook.id);
    expect((await json(['webhooks', 'deliveries', hook.id])).object).toBe('list');
    const key = await json(['keys', 'create', '--name', 'ci', '--scopes', 'models:read']);
    expect(key.secret).toMatch(/^aik_/);
    expect((await json(['models', 'list'], { key: key.secret })).object).toBe('list');
    const denied = await aiaas(['datasets', 'list'], { key: key.secret });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/permission_error/);
    await json(['keys', 'revoke', key.id]);
    await sleep(1_100);
    expect((await aiaas(['me'], { key: key.secret })).code).toBe(1);
  });
});

describe('admin', () => {
  const asAdmin = (args: string[]) => json(args, { key: adminKey() });

  it('creates a tenant with its first key, sets quotas, suspends it, and sees the service', async () => {
    const created = await asAdmin([
      'admin',
      'tenants',
      'create',
      'Acme',
      '--plan',
      'pro',
      '--quota',
      'max_concurrent_jobs=3',
      '--key',
      'laptop',
    ]);
    expect(created).toMatchObject({ object: 'tenant', name: 'Acme', plan: 'pro', quotas: { max_concurrent_jobs: 3 } });
    expect(created.api_key.secret).toMatch(/^aik_/);
    expect((await json(['me'], { key: created.api_key.secret })).tenant.id).toBe(created.id);
    const quotas = await asAdmin(['admin', 'tenants', 'quotas', created.id, 'max_queued_jobs=7', 'max_concurrent_jobs=plan']);
    expect(quotas.quota_overrides).toEqual({ max_queued_jobs: 7 });
    expect((await asAdmin(['admin', 'tenants', 'list'])).data.map((x: { id: string }) => x.id)).toContain(created.id);
    expect((await asAdmin(['admin', 'tenants', 'suspend', created.id])).status).toBe('suspended');
    const refused = await aiaas(['me'], { key: created.api_key.secret });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/permission_error.*HTTP 403/);
    expect((await asAdmin(['admin', 'overview'])).object).toBe('overview');
    expect((await asAdmin(['admin', 'workers'])).data.length).toBeGreaterThanOrEqual(1);
    const human = await aiaas(['admin', 'overview'], { key: adminKey() });
    // Other files' workers may still count as online (heartbeats within 30 s): the line, not the number.
    expect(human.stdout).toMatch(/^workers\s+\d+ online, \d+\/\d+ slots busy/m);
  });
});

describe('on a terminal', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  (hasScript ? it : it.skip)(
    'draws a progress bar with loss, val_loss and ETA in a pseudo-terminal',
    async () => {
      const ds = await json(['datasets', 'upload', csv, '--task', 'classification', '--name', 'tty']);
      await json(['models', 'create', 'tty', '--task', 'classification']);
      const command = `${process.execPath} bin/aiaas.mjs train --model tty --dataset ${ds.id} --epochs 5 --watch`;
      const r = spawnSync('script', ['-qfec', command, '/dev/null'], { env: cliEnv(), encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(0);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the terminal's ANSI escapes
      const screen = r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      expect(screen).toMatch(/epoch 5\/5 \S+ 100% \| loss \d[\d.e-]* \| val_loss \d[\d.e-]* \| ETA \S+/);
      expect(screen).toMatch(/accuracy\s+[01]/);
    },
    90_000,
  );
});
