import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import jpeg from 'jpeg-js';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// The real `aiaas` binary against a real API and worker, on images this test draws: a folder of
// class folders (horizontal and vertical bars, PNG and JPEG) uploaded as a zip, a CNN trained on
// it, and held-out files predicted. The contract is API.md "Images".
let server: RunningApi;
let worker: RunningProcess;
let t: TenantFixture;
const dir = mkdtempSync(join(tmpdir(), 'aiaas-cli-images-'));

beforeAll(async () => {
  server = await startApi();
  worker = await startWorker({ TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '1' });
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
}, 60_000);
afterAll(async () => {
  await worker?.stop();
  await server?.stop();
});

function aiaas(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/aiaas.mjs', ...args], {
    env: { ...process.env, NODE_OPTIONS: '', AIAAS_URL: server.url, AIAAS_API_KEY: t.key.secret, AIAAS_ADMIN_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function json<T = any>(args: string[]): Promise<T> {
  const r = await aiaas([...args, '--json']);
  if (r.code !== 0) throw new Error(`aiaas ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const SIZE = 16;
type Shape = 'horizontal' | 'vertical';

/** A 16×16 grey image with a 3-pixel bar across it at `at`, and a little noise (seeded). */
function bar(shape: Shape, at: number, seed: number): Buffer {
  let s = seed * 2654435761;
  const noise = () => (s = (s * 1103515245 + 12345) >>> 0) % 40;
  const rgba = Buffer.alloc(SIZE * SIZE * 4);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const on = shape === 'horizontal' ? y >= at && y < at + 3 : x >= at && x < at + 3;
      const v = (on ? 215 : 20) + noise();
      rgba.set([v, v, v, 255], (y * SIZE + x) * 4);
    }
  return rgba;
}

const png = (rgba: Buffer) => pngjs.PNG.sync.write(Object.assign(new pngjs.PNG({ width: SIZE, height: SIZE }), { data: rgba }));
const jpg = (rgba: Buffer) => jpeg.encode({ width: SIZE, height: SIZE, data: rgba }, 90).data;
const SHAPES: Shape[] = ['horizontal', 'vertical'];
const PER_CLASS = 30;

/** photos/<shape>/NNN.png|jpg, half of each format, plus files the CLI must skip. */
function drawFolder(): string {
  const root = join(dir, 'bars');
  for (const shape of SHAPES) {
    mkdirSync(join(root, shape), { recursive: true });
    for (let i = 0; i < PER_CLASS; i++) {
      const rgba = bar(shape, 1 + (i % 12), i + (shape === 'vertical' ? 1000 : 0));
      writeFileSync(join(root, shape, `${String(i).padStart(3, '0')}.${i % 2 ? 'jpg' : 'png'}`), i % 2 ? jpg(rgba) : png(rgba));
    }
  }
  writeFileSync(join(root, '.DS_Store'), 'x');
  writeFileSync(join(root, 'horizontal', 'README.txt'), 'not an image');
  return root;
}

describe('images through the CLI', () => {
  let dataset: string;

  it('uploads a folder of class folders as a zip, and the dataset has every image under its class', async () => {
    const root = drawFolder();
    const r = await aiaas(['datasets', 'upload', root, '--task', 'image-classification', '--name', 'bars', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: skipped 2 files');
    const ds = JSON.parse(r.stdout);
    expect(ds).toMatchObject({ object: 'dataset', name: 'bars', task: 'image-classification', rows: 2 * PER_CLASS });
    dataset = ds.id;
    const shown = await json(['datasets', 'show', dataset]);
    const label = shown.columns.find((c: { role: string }) => c.role === 'label');
    expect(label.class_counts).toEqual({ horizontal: PER_CLASS, vertical: PER_CLASS });
    const image = shown.columns.find((c: { images?: unknown }) => c.images);
    expect(image.images).toMatchObject({ count: 2 * PER_CLASS, min_width: SIZE, max_width: SIZE, min_height: SIZE, max_height: SIZE });
  });

  it('names the file the API refused, stores nothing, and exits 1', async () => {
    const root = join(dir, 'broken');
    for (const shape of SHAPES) {
      mkdirSync(join(root, shape), { recursive: true });
      writeFileSync(join(root, shape, 'ok.png'), png(bar(shape, 4, 7)));
    }
    // JPEG by its first bytes, cut short: only decoding finds out.
    writeFileSync(join(root, 'vertical', 'cut.jpg'), jpg(bar('vertical', 5, 3)).subarray(0, 40));
    const before = (await json(['datasets', 'list'])).data.length;
    const r = await aiaas(['datasets', 'upload', root, '--task', 'image-classification']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*vertical\/cut\.jpg/m);
    expect(r.stderr).toMatch(/invalid_request_error, \w+, .*HTTP 400/);
    expect((await json(['datasets', 'list'])).data.length).toBe(before);
  });

  it('uploads NDJSON records with base64 images as before', async () => {
    const file = join(dir, 'bars.ndjson');
    const lines = SHAPES.flatMap((shape) =>
      [3, 8].map((at) => JSON.stringify({ image: png(bar(shape, at, at)).toString('base64'), label: shape })),
    );
    writeFileSync(file, `${lines.join('\n')}\n`);
    const ds = await json(['datasets', 'upload', file, '--task', 'image-classification']);
    expect(ds).toMatchObject({ name: 'bars', task: 'image-classification', rows: 4, format: 'ndjson' });
  });

  it('trains a CNN on the upload and predicts held-out files, one line per file', async () => {
    expect(dataset).toBeDefined();
    await json(['models', 'create', 'bars', '--task', 'image-classification']);
    const job = await json(['train', '--model', 'bars', '--dataset', dataset, '--epochs', '20', '--seed', '1', '--watch']);
    expect(job).toMatchObject({ type: 'training', status: 'succeeded', version: 1 });

    const held = join(dir, 'held-out');
    mkdirSync(held, { recursive: true });
    const files = SHAPES.flatMap((shape) =>
      [2, 6, 10, 13].map((at, i) => {
        const file = join(held, `${shape}-${at}.${i % 2 ? 'jpg' : 'png'}`);
        const rgba = bar(shape, at, 5000 + at);
        writeFileSync(file, i % 2 ? jpg(rgba) : png(rgba));
        return { file, shape };
      }),
    );
    const r = await aiaas(['predict', '--model', 'bars', ...files.map((f) => f.file)]);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^FILE\s+LABEL\s+PROBABILITY\s+VERSION$/);
    const predicted = rows.slice(1).map((line) => line.split(/\s+/));
    expect(predicted.map(([file]) => file)).toEqual(files.map((f) => f.file));
    const right = predicted.filter(([, label], i) => label === files[i].shape).length;
    expect(right).toBeGreaterThanOrEqual(files.length - 1);
    for (const [, , probability, version] of predicted) {
      expect(Number(probability)).toBeGreaterThan(0.5);
      expect(version).toBe('1');
    }

    const explained = await json(['predict', '--model', 'bars', files[0].file, '--explain']);
    expect(explained.predictions).toHaveLength(1);
    expect(explained.predictions[0]).toMatchObject({
      file: files[0].file,
      label: expect.any(String),
      version: 1,
      explanation: { width: expect.any(Number), height: expect.any(Number) },
    });
    const map = explained.predictions[0].explanation;
    expect(map.values.flat()).toHaveLength(map.width * map.height);
  }, 240_000);
});
