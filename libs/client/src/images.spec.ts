import { afterEach, describe, expect, it } from '@jest/globals';
import jpeg from 'jpeg-js';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { Aiaas, AiaasError, ImageFileError, imageArchiveOf, ZipEntryChangedError, type UploadProgress } from './index.js';

// The client's image helpers against a local HTTP stand-in that keeps each request body on disk,
// where an independent reader (Python's zipfile) reads the archive back.
const dir = mkdtempSync(join(tmpdir(), 'aiaas-client-images-'));
const hasPython = spawnSync('python3', ['-c', 'import zipfile']).status === 0;

interface Received {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  file: string;
  bytes: number;
}

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** `answer` runs once the body is in (or at once, without reading it, when `early` says so for that request). */
async function fakeApi(
  answer: (req: Received, res: ServerResponse, n: number) => void,
  early?: (n: number) => boolean,
): Promise<{ url: string; seen: Received[] }> {
  const seen: Received[] = [];
  server = createServer((req, res) => {
    const n = seen.length;
    const r: Received = {
      method: req.method!,
      url: new URL(req.url!, 'http://x'),
      headers: req.headers,
      file: join(dir, `${randomBytes(6).toString('hex')}.body`),
      bytes: 0,
    };
    seen.push(r);
    if (early?.(n)) {
      answer(r, res, n);
      req.resume();
      return;
    }
    const out = createWriteStream(r.file);
    req.on('data', (c: Buffer) => {
      r.bytes += c.length;
    });
    req.pipe(out);
    out.on('finish', () => answer(r, res, n));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${status}`, ...headers }).end(JSON.stringify(body));
const dataset = { id: 'ds_1', object: 'dataset', name: 'photos', task: 'image-classification', rows: 4 };

const png = (size: number, value: number) =>
  pngjs.PNG.sync.write(Object.assign(new pngjs.PNG({ width: size, height: size }), { data: Buffer.alloc(size * size * 4, value) }));
const jpg = (size: number, value: number) =>
  jpeg.encode({ width: size, height: size, data: Buffer.alloc(size * size * 4, value) }, 80).data;
const noise = (size: number) => jpeg.encode({ width: size, height: size, data: randomBytes(size * size * 4) }, 90).data;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function photos(): { root: string; files: Record<string, Buffer> } {
  const root = join(mkdtempSync(join(tmpdir(), 'aiaas-photos-')), 'photos');
  // A larger image too (about 600 KB of noise), so the body spans many chunks.
  const files: Record<string, Buffer> = {
    'cat/1.jpg': jpg(16, 10),
    'cat/2.jpg': noise(600),
    'dog/1.png': png(12, 200),
    'dog/2.png': png(8, 250),
  };
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), bytes);
  }
  writeFileSync(join(root, '.DS_Store'), 'x');
  return { root, files };
}

/** Python's zipfile on a received body: [name, size, sha256] per entry (it checks each CRC as it reads). */
function readBack(file: string): Array<[string, number, string]> {
  const script =
    'import zipfile,sys,hashlib,json\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps([[i.filename,i.file_size,hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]))';
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Array<[string, number, string]>;
}

const clientOf = (url: string) => new Aiaas({ baseUrl: url, apiKey: 'aik_test', retry: { initialDelayMs: 1 } });

describe('datasets.uploadImages', () => {
  (hasPython ? it : it.skip)(
    'zips a folder of class folders as it streams, with an exact Content-Length and progress, and the archive reads back',
    async () => {
      const { root, files } = photos();
      const api = await fakeApi((_req, res) => json(res, 201, dataset));
      const progress: UploadProgress[] = [];
      const ds = await clientOf(api.url).datasets.uploadImages(root, { onProgress: (p) => progress.push(p) });
      expect(ds).toMatchObject({ id: 'ds_1' });
      const [req] = api.seen;
      expect(req.url.pathname).toBe('/v1/datasets');
      expect(Object.fromEntries(req.url.searchParams)).toEqual({ name: 'photos', task: 'image-classification' });
      expect(req.headers['content-type']).toBe('application/zip');
      expect(req.headers['transfer-encoding']).toBeUndefined();
      expect(Number(req.headers['content-length'])).toBe(req.bytes);
      expect(req.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
      expect(req.headers.authorization).toBe('Bearer aik_test');
      expect(readBack(req.file)).toEqual(Object.entries(files).map(([name, bytes]) => [name, bytes.length, sha(bytes)]));

      expect(progress[0]).toEqual({ sentBytes: 0, totalBytes: req.bytes });
      expect(progress.at(-1)).toEqual({ sentBytes: req.bytes, totalBytes: req.bytes });
      expect(progress.length).toBeGreaterThan(4);
      progress.forEach((p, i) => {
        i > 0 && expect(p.sentBytes).toBeGreaterThan(progress[i - 1].sentBytes);
      });
    },
  );

  (hasPython ? it : it.skip)('reads the folder again for a retry after a 503, under the same Idempotency-Key', async () => {
    const { root, files } = photos();
    const api = await fakeApi((_req, res, n) =>
      n === 0
        ? json(res, 503, { error: { type: 'api_error', code: 'dependency_unavailable', message: 'busy' } }, { 'retry-after': '0' })
        : json(res, 201, dataset),
    );
    await clientOf(api.url).datasets.uploadImages(root, { name: 'again' });
    expect(api.seen).toHaveLength(2);
    expect(api.seen[1].headers['idempotency-key']).toBe(api.seen[0].headers['idempotency-key']);
    for (const req of api.seen) {
      expect(Number(req.headers['content-length'])).toBe(req.bytes);
      expect(readBack(req.file).map(([name]) => name)).toEqual(Object.keys(files));
    }
  });

  it('throws the API’s refusal when it answers before reading the whole body', async () => {
    const { root } = photos();
    const refusal = {
      error: {
        type: 'invalid_request_error',
        code: 'image_undecodable',
        message: 'cat/2.jpg is not a decodable PNG or JPEG',
        param: 'cat/2.jpg',
      },
    };
    const api = await fakeApi(
      (_req, res) => json(res, 400, refusal, { connection: 'close' }),
      () => true,
    );
    const err = (await clientOf(api.url)
      .datasets.uploadImages(root)
      .catch((e: unknown) => e)) as AiaasError;
    expect(err).toBeInstanceOf(AiaasError);
    expect([err.status, err.code, err.message, err.param]).toEqual([
      400,
      'image_undecodable',
      'cat/2.jpg is not a decodable PNG or JPEG',
      'cat/2.jpg',
    ]);
  });

  it('sends a .zip file as it is, and a stream once (no retry: it cannot be read again)', async () => {
    const zip = join(dir, 'set.zip');
    const bytes = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(3000)]);
    writeFileSync(zip, bytes);
    const api = await fakeApi((_req, res, n) =>
      n < 2
        ? json(res, 201, dataset)
        : json(res, 503, { error: { type: 'api_error', code: 'dependency_unavailable', message: 'busy' } }, { 'retry-after': '0' }),
    );
    const client = clientOf(api.url);
    await client.datasets.uploadImages(zip);
    expect(Object.fromEntries(api.seen[0].url.searchParams)).toEqual({ name: 'set', task: 'image-classification' });
    expect(readFileSync(api.seen[0].file)).toEqual(bytes);
    expect(api.seen[0].headers['content-length']).toBe('3004');

    await client.datasets.uploadImages(createReadStream(zip), { name: 'streamed' });
    expect(api.seen[1].headers['transfer-encoding']).toBe('chunked'); // no length given
    expect(readFileSync(api.seen[1].file)).toEqual(bytes);

    const err = (await client.datasets
      .uploadImages(createReadStream(zip), { name: 'once', contentLength: bytes.length })
      .catch((e: unknown) => e)) as AiaasError;
    expect([err.status, api.seen.length]).toEqual([503, 3]);
  });

  it('throws a file that changed after the folder was read as itself, and does not retry it', async () => {
    const { root } = photos();
    const archive = await imageArchiveOf(root);
    writeFileSync(join(root, 'dog', '1.png'), png(30, 1)); // another size than planned
    const api = await fakeApi((_req, res) => json(res, 201, dataset));
    const err = await clientOf(api.url)
      .datasets.uploadImages(archive)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZipEntryChangedError);
    expect((err as Error).message).toMatch(/^dog\/1\.png changed while it was being uploaded/);
    expect(api.seen.length).toBeLessThanOrEqual(1);
  });

  it('holds about one file in memory, not the archive: 96 MB go out with under 40 MB of buffers alive', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const root = join(mkdtempSync(join(tmpdir(), 'aiaas-big-')), 'big');
    for (const label of ['a', 'b']) {
      mkdirSync(join(root, label), { recursive: true });
      for (let i = 0; i < 12; i++)
        writeFileSync(join(root, label, `${i}.jpg`), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(4 << 20)]));
    }
    const api = await fakeApi((_req, res) => json(res, 201, dataset));
    gc();
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    let next = 0;
    await clientOf(api.url).datasets.uploadImages(root, {
      onProgress: ({ sentBytes }) => {
        if (sentBytes < next) return;
        next += 16 << 20;
        gc();
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
      },
    });
    expect(api.seen[0].bytes).toBeGreaterThan(96 << 20);
    expect(peak).toBeLessThan(40 << 20);
  });

  it('refuses a folder with no class folders before any request', async () => {
    const root = mkdtempSync(join(tmpdir(), 'aiaas-flat-'));
    writeFileSync(join(root, 'a.jpg'), jpg(4, 1));
    const api = await fakeApi((_req, res) => json(res, 201, dataset));
    await expect(clientOf(api.url).datasets.uploadImages(root)).rejects.toMatchObject({ name: 'ImageFileError', code: 'no_class_folders' });
    expect(api.seen).toHaveLength(0);
  });
});

describe('models.predictImages', () => {
  const predictionOf = (i: number) => ({
    label: i % 2 ? 'dog' : 'cat',
    probabilities: { cat: i % 2 ? 0.1 : 0.9, dog: i % 2 ? 0.9 : 0.1 },
    version: 3,
  });

  /** Answers each predict request inline, with one prediction (and a saliency map) per input. */
  async function predictApi(status = 200) {
    let offset = 0;
    return fakeApi((req, res) => {
      const body = JSON.parse(readFileSync(req.file, 'utf8')) as { inputs: Array<{ image: string }>; explain?: boolean };
      const predictions = body.inputs.map((_x, i) => predictionOf(offset + i));
      offset += body.inputs.length;
      const explanations = body.explain
        ? body.inputs.map(() => ({ saliency: { width: 2, height: 2, values: [0, 0.5, 0.25, 1] } }))
        : undefined;
      json(res, status, {
        id: `job_${offset}`,
        object: 'job',
        status: 'succeeded',
        predictions,
        ...(explanations ? { explanations } : {}),
      });
    });
  }

  it('sends files and bytes as base64 images in batches, and returns one typed prediction per image, in order', async () => {
    const { root, files } = photos();
    const api = await predictApi();
    const paths = ['cat/1.jpg', 'dog/1.png', 'cat/2.jpg'].map((p) => join(root, p));
    const predictions = await clientOf(api.url).models.predictImages('pets', [...paths, files['dog/2.png']], {
      batchSize: 3,
      explain: true,
      alias: 'prod',
    });
    expect(api.seen.map((r) => r.url.pathname)).toEqual(['/v1/models/pets/predict', '/v1/models/pets/predict']);
    expect(api.seen[0].headers.prefer).toBe('wait=60');
    const first = JSON.parse(readFileSync(api.seen[0].file, 'utf8'));
    expect(first).toEqual({ inputs: paths.map((p) => ({ image: readFileSync(p).toString('base64') })), alias: 'prod', explain: true });
    expect(JSON.parse(readFileSync(api.seen[1].file, 'utf8')).inputs).toEqual([{ image: files['dog/2.png'].toString('base64') }]);
    expect(predictions.map((p) => [p.file, p.label, p.version])).toEqual([
      [paths[0], 'cat', 3],
      [paths[1], 'dog', 3],
      [paths[2], 'cat', 3],
      [undefined, 'dog', 3],
    ]);
    expect(predictions[0].explanation).toEqual({ width: 2, height: 2, values: [0, 0.5, 0.25, 1] });
  });

  it('names the file the API refused, from the input index it gave', async () => {
    const { root } = photos();
    const api = await fakeApi((_req, res) =>
      json(res, 400, {
        error: {
          type: 'invalid_request_error',
          code: 'image_too_large',
          message: 'inputs[1].image is 90000 pixels, over the limit',
          param: 'inputs[1].image',
        },
      }),
    );
    const paths = ['cat/1.jpg', 'cat/2.jpg'].map((p) => join(root, p));
    const err = (await clientOf(api.url)
      .models.predictImages('pets', paths)
      .catch((e: unknown) => e)) as AiaasError;
    expect(err).toBeInstanceOf(AiaasError);
    expect(err.message).toBe(`${paths[1]}: inputs[1].image is 90000 pixels, over the limit`);
    expect(err.code).toBe('image_too_large');
  });

  it('refuses a missing file or a non-image before any request', async () => {
    const api = await predictApi();
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'hello');
    const client = clientOf(api.url);
    await expect(client.models.predictImages('pets', [text])).rejects.toMatchObject({
      name: 'ImageFileError',
      code: 'not_an_image',
      message: `${text} is not a PNG or JPEG image`,
    });
    await expect(client.models.predictImages('pets', [join(dir, 'nope.png')])).rejects.toBeInstanceOf(ImageFileError);
    await expect(client.models.predictImages('pets', [])).rejects.toThrow('no images');
    expect(api.seen).toHaveLength(0);
  });
});
