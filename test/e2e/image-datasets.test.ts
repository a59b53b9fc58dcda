import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { jpegImage, pixelBombPng, pngImage } from '../support/image-files.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { zipArchive, type ZipInput } from '../support/zip-writer.js';

let server: RunningApi;
let t: TenantFixture;
let db: pg.Client;

beforeAll(async () => {
  server = await startApi();
  t = await createTenant(server.url, { quotas: { requests_per_minute: 10_000 } });
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
}, 60_000);
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const zipUpload = (tenant: TenantFixture, zip: Buffer, q = 'name=shapes&task=image-classification') =>
  tenant.api.call('POST', `/v1/datasets?${q}`, { raw: new Uint8Array(zip), headers: { 'content-type': 'application/zip' } });
const ndjson = (tenant: TenantFixture, lines: unknown[], q = 'name=n&task=image-classification') =>
  tenant.api.call('POST', `/v1/datasets?${q}`, {
    raw: lines.map((l) => JSON.stringify(l)).join('\n'),
    headers: { 'content-type': 'application/x-ndjson' },
  });

const b64 = (b: Buffer) => b.toString('base64');
/** Two classes of small drawings, in PNG and JPEG. */
const shapes = (n = 3): ZipInput[] =>
  Array.from({ length: n }, (_, i) => [
    { name: `square/${String(i).padStart(4, '0')}.png`, data: pngImage(28, 28, 'square', i) },
    { name: `cross/${String(i).padStart(4, '0')}.jpg`, data: jpegImage(32, 20, 'cross', i) },
  ]).flat();

async function storedRows(id: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query<{ data: Buffer }>('SELECT data FROM dataset_chunks WHERE dataset_id = $1 ORDER BY seq', [id]);
  return rows.flatMap((r) =>
    gunzipSync(r.data)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  );
}

async function state(tenant: TenantFixture) {
  const me = await tenant.api.get('/v1/me');
  const list = await tenant.api.get('/v1/datasets?limit=100');
  return { datasets: list.body.data.length as number, storage: me.body.usage.storage_bytes as number };
}

describe('POST /v1/datasets with images', () => {
  it('takes a zip of class folders: labels from the folders, rows {file, image, label}, the image column summarized, storage counted', async () => {
    const u = await createTenant(server.url);
    const entries = [{ name: 'square/' }, { name: 'cross/' }, ...shapes(3)];
    const zip = zipArchive(entries);
    const r = await zipUpload(u, zip);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      object: 'dataset',
      name: 'shapes',
      task: 'image-classification',
      label: 'label',
      format: 'zip',
      rows: 6,
    });
    expect(r.body.columns).toEqual([
      { name: 'file', type: 'string', role: 'ignored' },
      { name: 'image', type: 'image', role: 'image', images: { count: 6, min_width: 28, max_width: 32, min_height: 20, max_height: 28 } },
      { name: 'label', type: 'category', role: 'label', class_counts: { cross: 3, square: 3 } },
    ]);
    const images = entries.filter((e) => e.data);
    expect(r.body.sha256).toBe(createHash('sha256').update(zip).digest('hex'));
    expect(r.body.bytes).toBe(images.reduce((n, e) => n + e.data!.length, 0));
    const rows = await storedRows(r.body.id);
    expect(rows.map((row) => row.file).sort()).toEqual(images.map((e) => e.name).sort());
    for (const row of rows) {
      const source = images.find((e) => e.name === row.file)!;
      expect(row).toEqual({ file: source.name, image: b64(source.data!), label: source.name.split('/')[0] });
    }
    expect((await u.api.get('/v1/me')).body.usage.storage_bytes).toBe(r.body.bytes);
    expect((await u.api.get(`/v1/datasets/${r.body.id}`)).body).toEqual(r.body);
    expect((await u.api.get('/v1/datasets?task=image-classification')).body.data.map((d: { id: string }) => d.id)).toEqual([r.body.id]);
  });

  it('skips the one folder that wraps the class folders, __MACOSX/ and dotfiles', async () => {
    const zip = zipArchive([
      { name: 'photos/' },
      ...shapes(2).map((e) => ({ ...e, name: `photos/${e.name}` })),
      { name: 'photos/.DS_Store', data: Buffer.from('junk') },
      { name: 'photos/square/.hidden.png', data: Buffer.from('junk') },
      { name: '__MACOSX/photos/square/._0000.png', data: Buffer.from('junk') },
    ]);
    const r = await zipUpload(t, zip, 'name=wrapped&task=image-classification');
    expect(r.status).toBe(201);
    expect(r.body.columns[2].class_counts).toEqual({ cross: 2, square: 2 });
    expect((await storedRows(r.body.id)).map((row) => row.file).sort()).toEqual([
      'cross/0000.jpg',
      'cross/0001.jpg',
      'square/0000.png',
      'square/0001.png',
    ]);
  });

  it('takes JSON and NDJSON records with a base64 image (a data: URL too), keeping their other fields as ignored columns', async () => {
    const records = [
      { image: b64(pngImage(28, 28, 'square')), label: 'square', source: 'a' },
      { image: `data:image/jpeg;base64,${b64(jpegImage(16, 16, 'cross'))}`, label: 'cross', source: 'b' },
    ];
    const json = await t.api.post('/v1/datasets', { name: 'j', task: 'image-classification', records });
    expect(json.status).toBe(201);
    expect(json.body).toMatchObject({ format: 'json', rows: 2 });
    expect(json.body.columns).toEqual([
      { name: 'image', type: 'image', role: 'image', images: { count: 2, min_width: 16, max_width: 28, min_height: 16, max_height: 28 } },
      { name: 'label', type: 'category', role: 'label', class_counts: { cross: 1, square: 1 } },
      { name: 'source', type: 'string', role: 'ignored' },
    ]);
    const stored = await storedRows(json.body.id);
    expect(stored[1]).toEqual({ image: b64(jpegImage(16, 16, 'cross')), label: 'cross', source: 'b' });

    const nd = await ndjson(
      t,
      records.map(({ image, label }) => ({ image, label })),
    );
    expect(nd.status).toBe(201);
    expect(nd.body).toMatchObject({ format: 'ndjson', rows: 2 });
    expect(nd.body.columns[0].images.count).toBe(2);
  });

  it('keeps tenants apart: another tenant gets 404 for an image dataset', async () => {
    const mine = await zipUpload(t, zipArchive(shapes(1)), 'name=private&task=image-classification');
    expect(mine.status).toBe(201);
    const other = await createTenant(server.url);
    expect((await other.api.get(`/v1/datasets/${mine.body.id}`)).status).toBe(404);
    expect((await other.api.delete(`/v1/datasets/${mine.body.id}`)).status).toBe(404);
    expect((await other.api.get('/v1/datasets')).body.data).toEqual([]);
    expect((await t.api.get(`/v1/datasets/${mine.body.id}`)).status).toBe(200);
  });
});

const png = pngImage(28, 28);
const truncatedPng = png.subarray(0, png.length - 30);
const jpegHeaderOnly = jpegImage(32, 32).subarray(0, 400);
const ok = shapes(1);

/** [what, entries, status, code, message] */
const zipRefusals: [string, () => Buffer, number, string, RegExp][] = [
  [
    'a path that leaves the archive',
    () => zipArchive([...ok, { name: 'square/../../evil.png', data: png }]),
    400,
    'archive_path_invalid',
    /^square\/\.\.\/\.\.\/evil\.png: a path that leaves the archive/,
  ],
  [
    'an absolute path',
    () => zipArchive([...ok, { name: '/etc/cron.d/x.png', data: png }]),
    400,
    'archive_path_invalid',
    /^\/etc\/cron\.d\/x\.png: an absolute path/,
  ],
  [
    'a symlink',
    () => zipArchive([...ok, { name: 'square/link.png', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]),
    400,
    'archive_symlink',
    /^square\/link\.png: a symbolic link/,
  ],
  [
    'an encrypted entry',
    () => zipArchive([...ok, { name: 'square/secret.png', data: png, encrypted: true }]),
    400,
    'archive_encrypted',
    /^square\/secret\.png: an encrypted entry/,
  ],
  [
    'an unsupported compression method',
    () => zipArchive([...ok, { name: 'cross/x.png', data: png, method: 12 }]),
    400,
    'archive_method_unsupported',
    /^cross\/x\.png: compressed with method 12 \(bzip2\)/,
  ],
  [
    'a non-image in a class folder',
    () => zipArchive([...ok, { name: 'cross/notes.txt', data: Buffer.from('hello') }]),
    400,
    'image_invalid',
    /^cross\/notes\.txt: not a PNG or JPEG image/,
  ],
  [
    'a truncated PNG',
    () => zipArchive([...ok, { name: 'cross/cut.png', data: truncatedPng }]),
    400,
    'image_undecodable',
    /^cross\/cut\.png: .*(truncated or corrupt)/,
  ],
  [
    'an undecodable JPEG',
    () => zipArchive([...ok, { name: 'cross/cut.jpg', data: jpegHeaderOnly }]),
    400,
    'image_undecodable',
    /^cross\/cut\.jpg: cannot be decoded as JPEG/,
  ],
  [
    'a file outside the class folders',
    () => zipArchive([...ok, { name: 'readme.txt', data: Buffer.from('hi') }]),
    400,
    'archive_layout',
    /^readme\.txt: a file outside the class folders/,
  ],
  [
    'an empty class folder',
    () => zipArchive([...ok, { name: 'bird/' }, { name: 'bird/.DS_Store', data: Buffer.from('x') }]),
    400,
    'dataset_empty_class',
    /^bird\/: an empty class folder/,
  ],
  [
    'a single class',
    () =>
      zipArchive([
        { name: 'cat/a.png', data: png },
        { name: 'cat/b.png', data: png },
      ]),
    400,
    'dataset_single_class',
    /single class folder \('cat'\)/,
  ],
  [
    'a pixel bomb (50,000 × 50,000 declared in a tiny PNG)',
    () => zipArchive([...ok, { name: 'square/bomb.png', data: pixelBombPng(50_000, 50_000) }]),
    400,
    'image_too_many_pixels',
    /^square\/bomb\.png: declares 50000×50000 pixels/,
  ],
  [
    'a zip bomb (an entry far more compressible than any image)',
    () => zipArchive([...ok, { name: 'square/bomb.png', data: Buffer.alloc(20 * 1024 * 1024) }]),
    413,
    'archive_entry_too_large',
    /^square\/bomb\.png: inflates to more than 100 times .*zip bomb/,
  ],
  [
    'an entry whose header understates its size',
    () => zipArchive([...ok, { name: 'square/lie.png', data: png, declaredSize: 10 }]),
    400,
    'archive_malformed',
    /^square\/lie\.png: inflates to \d+ bytes, its header declares 10/,
  ],
  ['bytes that are not a zip', () => Buffer.from('PK not really a zip at all'), 400, 'archive_malformed', /not a readable zip/],
];

describe('refusals of image uploads, each naming what was wrong, nothing stored', () => {
  it.each(zipRefusals)('zip: %s', async (_what, build, status, code, message) => {
    const before = await state(t);
    const r = await zipUpload(t, build(), 'name=bad&task=image-classification');
    expect([r.status, r.body.error?.code]).toEqual([status, code]);
    expect(r.body.error.message).toMatch(message);
    expect(await state(t)).toEqual(before);
  });

  it('zip: more images than max_dataset_rows (413, from the central directory), and inflated bytes past the storage quota (413 naming the entry)', async () => {
    const small = await createTenant(server.url, { quotas: { max_dataset_rows: 3, max_storage_bytes: 60_000 } });
    const tooMany = await zipUpload(small, zipArchive(shapes(2)));
    expect([tooMany.status, tooMany.body.error.code]).toEqual([413, 'max_dataset_rows']);
    expect(tooMany.body.error.message).toContain('4 images');
    // 900 KB of zeros deflate to about 1 KB: under the quota as sent, far past it inflated (and below the ratio's 1 MiB floor).
    const swell = await zipUpload(small, zipArchive([...ok, { name: 'square/swell.png', data: Buffer.alloc(900_000) }]));
    expect([swell.status, swell.body.error.code]).toEqual([413, 'max_storage_bytes']);
    expect(swell.body.error.message).toMatch(/^square\/swell\.png: /);
    expect(await state(small)).toEqual({ datasets: 0, storage: 0 });
  });

  it('zip: only for task image-classification', async () => {
    const r = await zipUpload(t, zipArchive(ok), 'name=x&task=classification');
    expect([r.status, r.body.error.param]).toEqual([400, 'task']);
  });

  it('JSON and NDJSON: bad base64, a non-image, a pixel bomb, a truncated image, a missing image column: each names its record or line', async () => {
    const before = await state(t);
    const good = { image: b64(png), label: 'a' };
    const cases: [() => ReturnType<typeof ndjson>, string, RegExp][] = [
      [
        () =>
          t.api.post('/v1/datasets', { name: 'x', task: 'image-classification', records: [good, { image: 'not base64!', label: 'b' }] }),
        'image_invalid_base64',
        /^records\[1\]: the image 'image' is not valid base64/,
      ],
      [
        () => t.api.post('/v1/datasets', { name: 'x', task: 'image-classification', records: [good, { image: 42, label: 'b' }] }),
        'image_invalid',
        /^records\[1\]: the image 'image' must be a base64 string/,
      ],
      [() => ndjson(t, [good, { image: b64(Buffer.from('plain text')), label: 'b' }]), 'image_invalid', /^line 2: not a PNG or JPEG image/],
      [
        () => ndjson(t, [good, good, { image: b64(pixelBombPng(50_000, 50_000)), label: 'b' }]),
        'image_too_many_pixels',
        /^line 3: declares 50000×50000 pixels/,
      ],
      [() => ndjson(t, [good, { image: b64(truncatedPng), label: 'b' }]), 'image_undecodable', /^line 2: /],
      [() => ndjson(t, [{ picture: b64(png), label: 'a' }]), 'image_missing', /The image column 'image' is not in the data/],
      [() => ndjson(t, [good, { image: b64(png), label: 'a' }]), 'dataset_single_class', /single class/],
    ];
    for (const [call, code, message] of cases) {
      const r = await call();
      expect([r.status, r.body.error?.code]).toEqual([400, code]);
      expect(r.body.error.message).toMatch(message);
    }
    expect(await state(t)).toEqual(before);
  });
});
