import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import jpeg from 'jpeg-js';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';

// The real `aiaas` binary (bin/aiaas.mjs → dist/) against a local HTTP stand-in that keeps each
// request body, so an independent reader (Python's zipfile) can read the archive the CLI sent.
const dir = mkdtempSync(join(tmpdir(), 'aiaas-cli-images-'));
const hasPython = spawnSync('python3', ['-c', 'import zipfile']).status === 0;
const hasScript = spawnSync('script', ['--version']).status === 0;

interface Received {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  file: string;
  bytes: number;
}
const seen: Received[] = [];
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const r: Received = {
      method: req.method!,
      url: new URL(req.url!, 'http://x'),
      headers: req.headers,
      file: join(dir, `${randomBytes(6).toString('hex')}.body`),
      bytes: 0,
    };
    seen.push(r);
    const out = createWriteStream(r.file);
    req.on('data', (c: Buffer) => (r.bytes += c.length));
    req.pipe(out);
    out.on('finish', () => {
      res.setHeader('content-type', 'application/json');
      if (r.url.pathname === '/v1/datasets') {
        const name = r.url.searchParams.get('name');
        res.writeHead(201).end(
          JSON.stringify({
            id: 'ds_img',
            object: 'dataset',
            name,
            task: 'image-classification',
            rows: 4,
            bytes: r.bytes,
            columns: [{ name: 'label', type: 'category', role: 'label', class_counts: { cat: 2, dog: 2 } }],
          }),
        );
        return;
      }
      const { inputs } = JSON.parse(readFileSync(r.file, 'utf8')) as { inputs: Array<{ image: string }> };
      // The stand-in "model": a PNG is a dog, a JPEG a cat.
      const predictions = inputs.map(({ image }) =>
        Buffer.from(image, 'base64')[0] === 0x89
          ? { label: 'dog', probabilities: { cat: 0.25, dog: 0.75 }, version: 2 }
          : { label: 'cat', probabilities: { cat: 0.875, dog: 0.125 }, version: 2 },
      );
      res.writeHead(200).end(JSON.stringify({ id: 'job_1', object: 'job', status: 'succeeded', predictions }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const png = (size: number) =>
  pngjs.PNG.sync.write(Object.assign(new pngjs.PNG({ width: size, height: size }), { data: randomBytes(size * size * 4) }));
const jpg = (size: number) => jpeg.encode({ width: size, height: size, data: randomBytes(size * size * 4) }, 85).data;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function photos(): { root: string; files: Record<string, Buffer> } {
  const root = join(mkdtempSync(join(dir, 'set-')), 'photos');
  const files: Record<string, Buffer> = { 'cat/1.jpg': jpg(20), 'cat/2.jpg': jpg(300), 'dog/1.png': png(16), 'dog/2.png': png(24) };
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), bytes);
  }
  writeFileSync(join(root, '.DS_Store'), 'x');
  writeFileSync(join(root, 'cat', 'notes.txt'), 'a note');
  return { root, files };
}

function aiaas(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/aiaas.mjs', ...args], {
    env: { ...process.env, NODE_OPTIONS: '', AIAAS_URL: url, AIAAS_API_KEY: 'aik_test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function readBack(file: string): Array<[string, number, string]> {
  const script =
    'import zipfile,sys,hashlib,json\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps([[i.filename,i.file_size,hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]))';
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Array<[string, number, string]>;
}

describe('aiaas datasets upload FOLDER --task image-classification', () => {
  (hasPython ? it : it.skip)('sends the folder as a well-formed zip of its class folders, warning about what it skipped', async () => {
    const { root, files } = photos();
    const r = await aiaas(['datasets', 'upload', root, '--task', 'image-classification', '--name', 'pets']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: skipped 2 files of ${root}:\n  .DS_Store (a dotfile)\n  cat/notes.txt (not a PNG or JPEG)\n`);
    expect(r.stdout).toMatch(
      /^uploaded ds_img \(pets\): 4 images, \d+ bytes\nCOLUMN\s+TYPE\s+ROLE\s+CLASSES\nlabel\s+category\s+label\s+cat:2 dog:2\n$/,
    );
    const req = seen.at(-1)!;
    expect([req.method, req.url.pathname, req.url.search, req.headers['content-type']]).toEqual([
      'POST',
      '/v1/datasets',
      '?name=pets&task=image-classification',
      'application/zip',
    ]);
    expect(Number(req.headers['content-length'])).toBe(req.bytes);
    expect(req.headers['user-agent']).toBe('aiaas-cli/1');
    expect(readBack(req.file)).toEqual(Object.entries(files).map(([name, bytes]) => [name, bytes.length, sha(bytes)]));
  });

  it('names the dataset after the folder, and prints the API’s answer under --json', async () => {
    const { root } = photos();
    const r = await aiaas(['datasets', 'upload', root, '--task', 'image-classification', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 'ds_img', name: 'photos' });
  });

  it('refuses, with exit code 2, a folder with no class folders, a folder for another task, and --label', async () => {
    const flat = mkdtempSync(join(dir, 'flat-'));
    writeFileSync(join(flat, 'a.jpg'), jpg(8));
    const before = seen.length;
    const none = await aiaas(['datasets', 'upload', flat, '--task', 'image-classification']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      /^error: .*flat-\w+ has no class folders: put each class's images \(PNG or JPEG\) in a folder named after the class/,
    );
    const { root } = photos();
    const tabular = await aiaas(['datasets', 'upload', root, '--task', 'classification']);
    expect([tabular.code, tabular.stderr.trim()]).toEqual([
      2,
      `error: ${root} is a folder: only --task image-classification uploads folders (of class folders)`,
    ]);
    const label = await aiaas(['datasets', 'upload', root, '--task', 'image-classification', '--label', 'kind']);
    expect(label.code).toBe(2);
    expect(seen.length).toBe(before);
  });

  it('sends a .zip file as it is', async () => {
    const zip = join(dir, 'archive.zip');
    const bytes = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(500)]);
    writeFileSync(zip, bytes);
    const r = await aiaas(['datasets', 'upload', zip, '--task', 'image-classification']);
    expect(r.code).toBe(0);
    const req = seen.at(-1)!;
    expect(req.url.searchParams.get('name')).toBe('archive');
    expect(readFileSync(req.file)).toEqual(bytes);
  });

  (hasScript ? it : it.skip)('draws a bar of the upload’s bytes on a terminal', async () => {
    const { root } = photos();
    const command = `${process.execPath} bin/aiaas.mjs datasets upload ${root} --task image-classification`;
    // Not spawnSync: the stand-in API answers from this process's event loop.
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...process.env, NODE_OPTIONS: '', AIAAS_URL: url, AIAAS_API_KEY: 'aik_test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the terminal's ANSI escapes
    const screen = stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    expect(screen).toMatch(/4 images in 2 classes \(cat 2, dog 2\), [\d.]+ KB as a zip/);
    expect(screen).toMatch(/uploading \S+ 100% \| [\d.]+ KB\/[\d.]+ KB \|/);
    expect(screen).toContain('uploaded ds_img (photos): 4 images');
  });
});

describe('aiaas predict --model M FILES', () => {
  it('sends the files as base64 images and prints one line per file', async () => {
    const { root, files } = photos();
    const paths = ['cat/1.jpg', 'dog/1.png'].map((p) => join(root, p));
    const r = await aiaas(['predict', '--model', 'pets', ...paths]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        `FILE${' '.repeat(paths[0].length - 4)}  LABEL  PROBABILITY  VERSION`,
        `${paths[0]}  cat    0.875        2`,
        `${paths[1]}  dog    0.75         2`,
        '',
      ].join('\n'),
    );
    const req = seen.at(-1)!;
    expect(req.url.pathname).toBe('/v1/models/pets/predict');
    expect(JSON.parse(readFileSync(req.file, 'utf8'))).toEqual({
      inputs: [{ image: files['cat/1.jpg'].toString('base64') }, { image: files['dog/1.png'].toString('base64') }],
    });

    const j = await aiaas(['predict', '--model', 'pets', paths[1], '--json']);
    expect(JSON.parse(j.stdout)).toEqual({
      predictions: [{ file: paths[1], label: 'dog', probabilities: { cat: 0.25, dog: 0.75 }, version: 2 }],
    });
  });

  it('refuses a mix of images and other files, with exit code 2, before any request', async () => {
    const { root } = photos();
    const before = seen.length;
    const r = await aiaas(['predict', '--model', 'pets', join(root, 'cat', '1.jpg'), join(root, 'cat', 'notes.txt')]);
    expect([r.code, r.stderr.trim()]).toEqual([
      2,
      `error: predict takes one JSON file (or -), or PNG and JPEG files: ${join(root, 'cat', 'notes.txt')} is not a PNG or JPEG image`,
    ]);
    expect(seen.length).toBe(before);
  });
});
