import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { noisePng, pixelBombPng, pngImage } from '../support/image-files.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { zipArchive, type ZipInput } from '../support/zip-writer.js';

// Hostile archives and images: each is refused naming its entry, quickly, without the API
// allocating what the archive or the image claims, and nothing is stored.

let server: RunningApi;
let capped: RunningApi; // a low absolute cap on inflated bytes, whatever the quota

beforeAll(async () => {
  [server, capped] = await Promise.all([
    startApi(),
    startApi({ DATASET_ZIP_MAX_INFLATED_BYTES: String(3 * 1024 * 1024), DATASET_ZIP_MAX_RATIO: '1000000' }),
  ]);
}, 60_000);
afterAll(() => Promise.all([server?.stop(), capped?.stop()]));

const upload = (t: TenantFixture, zip: Buffer) =>
  t.api.call('POST', '/v1/datasets?name=hostile&task=image-classification', {
    raw: new Uint8Array(zip),
    headers: { 'content-type': 'application/zip' },
  });

function vm(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

const classes: ZipInput[] = [
  { name: 'cat/1.png', data: pngImage(28, 28, 'square') },
  { name: 'dog/1.png', data: pngImage(28, 28, 'cross') },
];

async function nothingStored(t: TenantFixture) {
  expect((await t.api.get('/v1/datasets')).body.data).toEqual([]);
  expect((await t.api.get('/v1/me')).body.usage.storage_bytes).toBe(0);
}

describe('zip bombs', () => {
  it('refuses an entry of 256 MiB of zeros (about 250 KB compressed) by its inflated bytes, within a second and without the memory it claims', async () => {
    const t = await createTenant(server.url);
    // Stored as deflate of zeros and declared as a small size: the header lies, the inflated bytes are counted.
    const bomb: ZipInput = { name: 'cat/bomb.png', data: Buffer.alloc(256 * 1024 * 1024), declaredSize: 1000 };
    const zip = zipArchive([...classes, bomb]);
    expect(zip.length).toBeLessThan(1024 * 1024);
    const before = vm(server.proc.pid!, 'VmRSS');
    const start = performance.now();
    const r = await upload(t, zip);
    expect([r.status, r.body.error.code]).toEqual([413, 'archive_entry_too_large']);
    expect(r.body.error.message).toMatch(/^cat\/bomb\.png: inflates (past 8388608 bytes, the limit of one image|to more than 100 times)/);
    expect(performance.now() - start).toBeLessThan(1_000);
    expect(vm(server.proc.pid!, 'VmHWM') - before).toBeLessThan(64 * 1024 * 1024);
    await nothingStored(t);
  }, 60_000);

  it('refuses archives whose entries share the same compressed data (overlapping entries)', async () => {
    const t = await createTenant(server.url);
    const zip = zipArchive([...classes, ...Array.from({ length: 50 }, (_, i) => ({ name: `dog/copy${i}.png`, sameDataAs: 1 }))]);
    const r = await upload(t, zip);
    expect([r.status, r.body.error.code]).toEqual([400, 'archive_malformed']);
    expect(r.body.error.message).toMatch(/^dog\/copy\d+\.png: its data overlaps another entry's/);
    await nothingStored(t);
  });

  it('caps the inflated bytes of one archive (DATASET_ZIP_MAX_INFLATED_BYTES) even below the ratio limit, naming the entry that crossed it', async () => {
    const t = await createTenant(capped.url);
    const photo = noisePng(256, 256);
    const zip = zipArchive([...classes, ...Array.from({ length: 14 }, (_, i) => ({ name: `cat/big${i}.png`, data: photo }))]);
    const r = await upload(t, zip);
    expect([r.status, r.body.error.code]).toEqual([413, 'archive_too_large']);
    expect(r.body.error.message).toMatch(/^cat\/big\d+\.png: the archive inflates past 3145728 bytes/);
    await nothingStored(t);
  });
});

describe('pixel bombs', () => {
  it('refuses a PNG of a few hundred bytes declaring 50,000 × 50,000 pixels from its header: no 10 GB allocation, an answer within a second', async () => {
    const t = await createTenant(server.url);
    const bomb = pixelBombPng(50_000, 50_000);
    expect(bomb.length).toBeLessThan(1_000);
    const before = vm(server.proc.pid!, 'VmRSS');
    const start = performance.now();
    const zipped = await upload(t, zipArchive([...classes, { name: 'dog/bomb.png', data: bomb }]));
    const inline = await t.api.post('/v1/datasets', {
      name: 'x',
      task: 'image-classification',
      records: [{ image: bomb.toString('base64'), label: 'a' }],
    });
    expect(performance.now() - start).toBeLessThan(1_000);
    expect(vm(server.proc.pid!, 'VmHWM') - before).toBeLessThan(64 * 1024 * 1024);
    for (const [r, where] of [
      [zipped, 'dog/bomb.png'],
      [inline, 'records[0]'],
    ] as const) {
      expect([r.status, r.body.error.code]).toEqual([400, 'image_too_many_pixels']);
      expect(r.body.error.message).toBe(
        `${where}: declares 50000×50000 pixels, more than the limit of 16777216 (DATASET_IMAGE_MAX_PIXELS)`,
      );
    }
    await nothingStored(t);
  });
});

describe('paths and links that leave the archive', () => {
  it.each([
    ['cat/../../../etc/passwd.png', 'a path that leaves the archive'],
    ['..\\..\\windows\\evil.png', 'a path that leaves the archive'],
    ['/tmp/evil.png', 'an absolute path'],
    ['C:/evil.png', 'an absolute path'],
  ])('refuses %s', async (name, what) => {
    const t = await createTenant(server.url);
    const r = await upload(t, zipArchive([...classes, { name, data: pngImage(8, 8) }]));
    expect([r.status, r.body.error.code]).toEqual([400, 'archive_path_invalid']);
    expect(r.body.error.message).toBe(
      `${name}: ${what}${what === 'an absolute path' ? '; entries must be relative to the archive' : " ('..')"}`,
    );
    await nothingStored(t);
  });

  it('refuses a symlink entry, whatever it points at', async () => {
    const t = await createTenant(server.url);
    const r = await upload(
      t,
      zipArchive([...classes, { name: 'cat/evil.png', data: Buffer.from('../../../../etc/shadow'), mode: 0o120777, method: 0 }]),
    );
    expect([r.status, r.body.error.code]).toEqual([400, 'archive_symlink']);
    expect(r.body.error.message).toMatch(/^cat\/evil\.png: a symbolic link/);
    await nothingStored(t);
  });
});

describe('large archives stream', () => {
  // Measured here: the peak rise is about the same for 29, 59 and 117 MB archives (+145, +169, +188 MB:
  // garbage V8 has not collected yet, the pg and zlib buffers), so it is a bound, not a copy of the archive.
  it('stores a 60 MB archive of photos with the API’s memory rising by a bounded amount, whatever the archive’s size', async () => {
    const t = await createTenant(server.url);
    // Noise does not compress: ~400 KB per PNG, 150 entries of it (one image's bytes, many names).
    const photo = noisePng(320, 320);
    const entries = Array.from({ length: 150 }, (_, i) => ({ name: `${i % 2 ? 'cat' : 'dog'}/${i}.png`, data: photo, method: 0 }));
    const zip = zipArchive(entries);
    expect(zip.length).toBeGreaterThan(55 * 1024 * 1024);
    const before = vm(server.proc.pid!, 'VmRSS');
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, vm(server.proc.pid!, 'VmRSS'))), 10);
    const start = performance.now();
    const r = await upload(t, zip);
    const ms = performance.now() - start;
    clearInterval(sampler);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ rows: 150, bytes: 150 * photo.length });
    process.stdout.write(
      `60 MB archive: ${Math.round(ms)} ms, API RSS ${Math.round(before / 2 ** 20)} MB before, peak +${Math.round((peak - before) / 2 ** 20)} MB\n`,
    );
    expect(peak - before).toBeLessThan(256 * 1024 * 1024);
  }, 120_000);
});
