import { crc32 } from 'node:zlib';

/**
 * A streaming ZIP writer for files that are already compressed (JPEG, PNG): every entry is
 * STORED, so the archive's length is known before a byte is read (uploads send an exact
 * Content-Length and draw an exact progress bar), and only one file is in memory at a time.
 * Each local header carries the entry's CRC-32 and sizes (no data descriptors), so a reader that
 * walks local headers as the bytes arrive, without the central directory, reads it too.
 * ZIP64 records are added only when the archive needs them (over 65,535 entries or 4 GiB).
 */
export interface ZipEntry {
  /** The path inside the archive, `/`-separated (`cat/0001.jpg`). */
  name: string;
  /** The file's size in bytes, as planned: reading a different number of bytes is an error. */
  size: number;
  modified?: Date;
  /** The file's bytes; called once, or twice for a file over the in-memory limit (CRC, then data). */
  read(): AsyncIterable<Uint8Array>;
}

/** An entry whose bytes changed between planning the archive and writing it. */
export class ZipEntryChangedError extends Error {
  override readonly name = 'ZipEntryChangedError';
  constructor(
    readonly entry: string,
    detail: string,
  ) {
    super(`${entry} changed while it was being uploaded (${detail})`);
  }
}

const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const END_RECORD = 22;
const ZIP64_END_RECORD = 56;
const ZIP64_LOCATOR = 20;
const ZIP64_OFFSET_EXTRA = 12; // tag, size, 8-byte local header offset
const MAX_16 = 0xffff;
const MAX_32 = 0xffffffff;
/** A file up to this size is read once into memory; a larger one is read twice instead. */
const IN_MEMORY_LIMIT = 16 * 1024 * 1024;
/** Chunks handed on are at most this long, so progress moves smoothly through large files. */
const CHUNK = 64 * 1024;
const UTF8_NAMES = 0x0800;
const VERSION_MADE_BY = (3 << 8) | 45; // Unix, ZIP 4.5
const FILE_MODE = 0o100644;

interface Layout {
  names: Buffer[];
  offsets: number[];
  centralOffset: number;
  centralSize: number;
  zip64: boolean;
  length: number;
}

function layoutOf(entries: readonly Pick<ZipEntry, 'name' | 'size'>[]): Layout {
  const names = entries.map((e) => Buffer.from(e.name, 'utf8'));
  const offsets: number[] = [];
  let at = 0;
  entries.forEach((e, i) => {
    if (!Number.isSafeInteger(e.size) || e.size < 0 || e.size >= MAX_32)
      throw new RangeError(`${e.name}: ${e.size} bytes is not a size this writer stores (under 4 GiB)`);
    if (names[i].length > MAX_16) throw new RangeError(`${e.name}: the name is too long for a ZIP entry`);
    offsets.push(at);
    at += LOCAL_HEADER + names[i].length + e.size;
  });
  const centralOffset = at;
  let centralSize = 0;
  offsets.forEach((offset, i) => {
    centralSize += CENTRAL_HEADER + names[i].length + (offset >= MAX_32 ? ZIP64_OFFSET_EXTRA : 0);
  });
  const zip64 = entries.length >= MAX_16 || centralOffset >= MAX_32 || centralSize >= MAX_32 || centralOffset + centralSize >= MAX_32;
  const length = centralOffset + centralSize + (zip64 ? ZIP64_END_RECORD + ZIP64_LOCATOR : 0) + END_RECORD;
  return { names, offsets, centralOffset, centralSize, zip64, length };
}

/** The exact length in bytes of the archive `writeZip(entries)` writes. */
export function zipLength(entries: readonly Pick<ZipEntry, 'name' | 'size'>[]): number {
  return layoutOf(entries).length;
}

/** The archive of `entries`, in order, in chunks of about 64 KiB at most; pulled, so it never runs ahead of its reader. */
export async function* writeZip(entries: readonly ZipEntry[]): AsyncGenerator<Uint8Array, void, undefined> {
  const layout = layoutOf(entries);
  const crcs: number[] = [];
  for (const [i, entry] of entries.entries()) {
    const name = layout.names[i];
    const { time, date } = dosDateTime(entry.modified ?? new Date());
    if (entry.size <= IN_MEMORY_LIMIT) {
      const bytes = await readAll(entry);
      const crc = crc32(bytes);
      crcs.push(crc);
      yield localHeader(name, entry.size, crc, time, date);
      for (let at = 0; at < bytes.length; at += CHUNK) yield bytes.subarray(at, at + CHUNK);
    } else {
      const crc = await crcOf(entry);
      crcs.push(crc);
      yield localHeader(name, entry.size, crc, time, date);
      let again = 0;
      let length = 0;
      for await (const chunk of entry.read()) {
        length += chunk.length;
        if (length > entry.size) throw new ZipEntryChangedError(entry.name, `more than ${entry.size} bytes`);
        again = crc32(chunk, again);
        for (let at = 0; at < chunk.length; at += CHUNK) yield chunk.subarray(at, at + CHUNK);
      }
      if (length !== entry.size || again !== crc)
        throw new ZipEntryChangedError(entry.name, length !== entry.size ? `${length} bytes, not ${entry.size}` : 'its checksum moved');
    }
  }
  let directory: Buffer[] = [];
  let pending = 0;
  for (const [i, entry] of entries.entries()) {
    const { time, date } = dosDateTime(entry.modified ?? new Date());
    const header = centralHeader(layout.names[i], entry.size, crcs[i], time, date, layout.offsets[i]);
    directory.push(header);
    pending += header.length;
    if (pending >= CHUNK) {
      yield Buffer.concat(directory);
      directory = [];
      pending = 0;
    }
  }
  yield Buffer.concat([...directory, endRecords(layout, entries.length)]);
}

async function readAll(entry: ZipEntry): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of entry.read()) {
    length += chunk.length;
    if (length > entry.size) throw new ZipEntryChangedError(entry.name, `more than ${entry.size} bytes`);
    chunks.push(chunk);
  }
  if (length !== entry.size) throw new ZipEntryChangedError(entry.name, `${length} bytes, not ${entry.size}`);
  return Buffer.concat(chunks, length);
}

async function crcOf(entry: ZipEntry): Promise<number> {
  let crc = 0;
  for await (const chunk of entry.read()) crc = crc32(chunk, crc);
  return crc;
}

function localHeader(name: Buffer, size: number, crc: number, time: number, date: number): Buffer {
  const h = Buffer.alloc(LOCAL_HEADER + name.length);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4); // version needed: 2.0
  h.writeUInt16LE(UTF8_NAMES, 6);
  h.writeUInt16LE(0, 8); // stored
  h.writeUInt16LE(time, 10);
  h.writeUInt16LE(date, 12);
  h.writeUInt32LE(crc, 14);
  h.writeUInt32LE(size, 18); // compressed size
  h.writeUInt32LE(size, 22); // uncompressed size
  h.writeUInt16LE(name.length, 26);
  h.writeUInt16LE(0, 28); // no extra field
  name.copy(h, LOCAL_HEADER);
  return h;
}

function centralHeader(name: Buffer, size: number, crc: number, time: number, date: number, offset: number): Buffer {
  const far = offset >= MAX_32;
  const h = Buffer.alloc(CENTRAL_HEADER + name.length + (far ? ZIP64_OFFSET_EXTRA : 0));
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(VERSION_MADE_BY, 4);
  h.writeUInt16LE(far ? 45 : 20, 6);
  h.writeUInt16LE(UTF8_NAMES, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt16LE(time, 12);
  h.writeUInt16LE(date, 14);
  h.writeUInt32LE(crc, 16);
  h.writeUInt32LE(size, 20);
  h.writeUInt32LE(size, 24);
  h.writeUInt16LE(name.length, 28);
  h.writeUInt16LE(far ? ZIP64_OFFSET_EXTRA : 0, 30);
  // comment length, disk number, internal attributes: 0
  h.writeUInt32LE((FILE_MODE << 16) >>> 0, 38); // external attributes: a regular file, rw-r--r--
  h.writeUInt32LE(far ? MAX_32 : offset, 42);
  name.copy(h, CENTRAL_HEADER);
  if (far) {
    const x = CENTRAL_HEADER + name.length;
    h.writeUInt16LE(0x0001, x);
    h.writeUInt16LE(8, x + 2);
    h.writeBigUInt64LE(BigInt(offset), x + 4);
  }
  return h;
}

function endRecords(layout: Layout, count: number): Buffer {
  const parts: Buffer[] = [];
  if (layout.zip64) {
    const z = Buffer.alloc(ZIP64_END_RECORD + ZIP64_LOCATOR);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(BigInt(ZIP64_END_RECORD - 12), 4); // the record's size after this field
    z.writeUInt16LE(VERSION_MADE_BY, 12);
    z.writeUInt16LE(45, 14);
    // this disk, the central directory's disk: 0
    z.writeBigUInt64LE(BigInt(count), 24);
    z.writeBigUInt64LE(BigInt(count), 32);
    z.writeBigUInt64LE(BigInt(layout.centralSize), 40);
    z.writeBigUInt64LE(BigInt(layout.centralOffset), 48);
    z.writeUInt32LE(0x07064b50, ZIP64_END_RECORD);
    z.writeBigUInt64LE(BigInt(layout.centralOffset + layout.centralSize), ZIP64_END_RECORD + 8);
    z.writeUInt32LE(1, ZIP64_END_RECORD + 16); // one disk
    parts.push(z);
  }
  const e = Buffer.alloc(END_RECORD);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(Math.min(count, MAX_16), 8);
  e.writeUInt16LE(Math.min(count, MAX_16), 10);
  e.writeUInt32LE(Math.min(layout.centralSize, MAX_32), 12);
  e.writeUInt32LE(Math.min(layout.centralOffset, MAX_32), 16);
  parts.push(e);
  return Buffer.concat(parts);
}

/** MS-DOS time and date (2-second resolution, local time, 1980 to 2107), as ZIP headers hold them. */
function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.min(2107, Math.max(1980, d.getFullYear()));
  if (year !== d.getFullYear()) return { time: 0, date: ((year - 1980) << 9) | (1 << 5) | 1 };
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}
