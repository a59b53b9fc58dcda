import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { writeZip, ZipEntryChangedError, zipLength, type ZipEntry } from './zip-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'aiaas-zip-'));
const hasPython = spawnSync('python3', ['-c', 'import zipfile']).status === 0;
const hasUnzip = spawnSync('unzip', ['-v']).status === 0;

function entry(name: string, bytes: Uint8Array, chunk = 1000): ZipEntry {
  return {
    name,
    size: bytes.length,
    modified: new Date(2026, 10, 28, 12, 30, 14),
    async *read() {
      for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
    },
  };
}

async function zipOf(entries: ZipEntry[]): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of writeZip(entries)) {
    expect(c.length).toBeLessThanOrEqual(2 * 64 * 1024); // a header, 64 KiB of data, or a piece of the directory
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Python's zipfile, a reader written by others: each entry's name, size, method and the sha256 of what it reads (it checks the CRC). */
function pythonRead(zip: Buffer): Array<[string, number, number, string]> {
  const file = join(dir, `${randomBytes(4).toString('hex')}.zip`);
  writeFileSync(file, zip);
  const script =
    'import zipfile,sys,hashlib,json\nz=zipfile.ZipFile(sys.argv[1])\nprint(json.dumps([[i.filename,i.file_size,i.compress_type,hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]))';
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Array<[string, number, number, string]>;
}

/** Walks the local headers as a streaming reader does, never looking at the central directory. */
function localHeaders(zip: Buffer): Array<{ name: string; size: number; crc: number; flags: number; method: number; data: Buffer }> {
  const out = [];
  let at = 0;
  while (zip.readUInt32LE(at) === 0x04034b50) {
    const flags = zip.readUInt16LE(at + 6);
    const method = zip.readUInt16LE(at + 8);
    const crc = zip.readUInt32LE(at + 14);
    const size = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    const name = zip.subarray(at + 30, at + 30 + nameLength).toString('utf8');
    const start = at + 30 + nameLength + extra;
    out.push({ name, size, crc, flags, method, data: zip.subarray(start, start + size) });
    at = start + size;
  }
  expect(zip.readUInt32LE(at)).toBe(0x02014b50); // then the central directory
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('writeZip', () => {
  const files = [
    entry('cat/0001.jpg', randomBytes(5_000)),
    entry('cat/0002.jpg', randomBytes(70_000), 7_000),
    entry('dog/x.png', randomBytes(1)),
    entry('chat noir/é.png', randomBytes(300)),
    entry('empty/zero.png', new Uint8Array(0)),
  ];

  it('writes exactly zipLength bytes', async () => {
    const zip = await zipOf(files);
    expect(zip.length).toBe(zipLength(files));
    expect(zipLength([])).toBe(22);
    expect((await zipOf([])).length).toBe(22);
  });

  (hasPython ? it : it.skip)('is read back by Python’s zipfile: names (UTF-8), sizes, stored entries and bytes', async () => {
    const zip = await zipOf(files);
    const read = pythonRead(zip);
    const expected = await Promise.all(
      files.map(async (f) => {
        const chunks: Uint8Array[] = [];
        for await (const c of f.read()) chunks.push(c);
        return [f.name, f.size, 0, sha(Buffer.concat(chunks))];
      }),
    );
    expect(read).toEqual(expected);
  });

  (hasUnzip ? it : it.skip)('passes unzip -t (CRCs) and keeps the modification time', async () => {
    const file = join(dir, 'times.zip');
    writeFileSync(file, await zipOf(files));
    const test = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
    expect(test.stdout).toContain('No errors detected');
    const list = spawnSync('unzip', ['-l', file], { encoding: 'utf8' });
    expect(list.stdout).toMatch(/5000\s+2026-11-28 12:30\s+cat\/0001\.jpg/);
  });

  it('puts the CRC-32 and sizes in every local header, with no data descriptor', async () => {
    const zip = await zipOf(files);
    const headers = localHeaders(zip);
    expect(headers.map((h) => h.name)).toEqual(files.map((f) => f.name));
    for (const h of headers) {
      expect(h.flags & 0x0008).toBe(0); // no data descriptor
      expect(h.flags & 0x0800).toBe(0x0800); // UTF-8 names
      expect(h.method).toBe(0);
      expect(h.crc).toBe(crc32(h.data));
    }
  });

  it('reads a file over the in-memory limit twice (CRC, then data) and stores it intact', async () => {
    const big = randomBytes(17 * 1024 * 1024);
    const zip = await zipOf([entry('big/photo.jpg', big, 1 << 20), entry('big/small.jpg', randomBytes(10))]);
    const [h] = localHeaders(zip);
    expect(h.size).toBe(big.length);
    expect(h.crc).toBe(crc32(big));
    expect(sha(h.data)).toBe(sha(big));
    if (hasPython) expect(pythonRead(zip)[0]).toEqual(['big/photo.jpg', big.length, 0, sha(big)]);
  });

  (hasPython ? it : it.skip)(
    'adds ZIP64 end records past 65,535 entries, and Python reads them all',
    async () => {
      const many = Array.from({ length: 70_000 }, (_, i) => entry(`c${i % 2}/${i}.png`, Buffer.from([i & 0xff])));
      const zip = await zipOf(many);
      expect(zip.length).toBe(zipLength(many));
      expect(zip.readUInt32LE(zip.length - 22 - 20 - 56)).toBe(0x06064b50);
      const read = pythonRead(zip);
      expect(read).toHaveLength(70_000);
      expect(read[69_999]).toEqual(['c1/69999.png', 1, 0, sha(Buffer.from([69_999 & 0xff]))]);
    },
    60_000,
  );

  it('fails, naming the file, when a file is not the size it was planned at', async () => {
    const shrunk: ZipEntry = { ...entry('cat/a.jpg', randomBytes(100)), size: 120 };
    await expect(zipOf([shrunk])).rejects.toThrow(ZipEntryChangedError);
    await expect(zipOf([shrunk])).rejects.toThrow('cat/a.jpg changed while it was being uploaded (100 bytes, not 120)');
    const grown: ZipEntry = { ...entry('cat/b.jpg', randomBytes(100)), size: 80 };
    await expect(zipOf([grown])).rejects.toThrow('cat/b.jpg changed while it was being uploaded (more than 80 bytes)');
  });
});
