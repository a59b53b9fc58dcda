import { ApiError } from '@app/common';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32, createInflateRaw, inflateRawSync } from 'node:zlib';

/** One file or folder of an archive, as its central directory describes it. */
export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  /** The size the header declares: checked after inflating, never trusted for a limit. */
  declaredSize: number;
  localOffset: number;
  /** Unix mode bits (the high half of the external attributes), 0 when the archive has none. */
  mode: number;
}

/** Caps on what one entry may inflate to; each refusal is a 413 naming the entry. */
export interface InflateLimits {
  /** Bytes of one entry. */
  maxEntryBytes: number;
  /** Inflated bytes over compressed bytes, checked past the first RATIO_FLOOR bytes. */
  maxRatio: number;
  /** Bytes still allowed for the whole archive. */
  remaining: number;
  /** The refusal when `remaining` runs out (the storage quota or the absolute cap). */
  onTotal: (entry: string) => ApiError;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** A central directory past this is refused before it is read (it would be held whole). */
const MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024;
/** Small entries may inflate far past the ratio (a blank PNG's IDAT does) without being bombs. */
const RATIO_FLOOR = 1024 * 1024;
/** Entries up to this many compressed bytes are read and inflated in one go (a stream per 1 KB image costs more than its inflate). */
const SMALL_ENTRY_BYTES = 64 * 1024;

export const S_IFMT = 0o170000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;

const malformed = (message: string) => ApiError.invalid('archive_malformed', `The archive is not a readable zip: ${message}`);

/**
 * A zip archive in a file, read from its central directory (the end of the file) the way unzip
 * does, never from the local headers alone: entries are inflated one at a time with node:zlib and
 * their inflated bytes counted as they come, so that headers that lie about sizes change nothing.
 */
export class ZipArchive {
  private constructor(
    private readonly file: FileHandle,
    readonly entries: ZipEntry[],
    /** Where the central directory starts: no entry's data may run into it. */
    private readonly centralOffset: number,
  ) {}

  static async open(file: FileHandle, size: number): Promise<ZipArchive> {
    const tailLength = Math.min(size, 22 + 0xffff);
    if (tailLength < 22) throw malformed('it is shorter than an end-of-archive record');
    const tail = await read(file, size - tailLength, tailLength);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD) {
        at = i;
        break;
      }
    }
    if (at < 0) throw malformed('no end-of-archive record (is it a zip?)');
    const eocdOffset = size - tailLength + at;
    let count = tail.readUInt16LE(at + 10);
    let cdSize = tail.readUInt32LE(at + 12);
    let cdOffset = tail.readUInt32LE(at + 16);
    if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0)
      throw malformed('archives split over several disks are not supported');
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      if (eocdOffset < 20) throw malformed('a ZIP64 archive without its locator');
      const locator = await read(file, eocdOffset - 20, 20);
      if (locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw malformed('a ZIP64 archive without its locator');
      const z64 = await read(file, safeNumber(locator.readBigUInt64LE(8)), 56);
      if (z64.readUInt32LE(0) !== ZIP64_EOCD) throw malformed('a broken ZIP64 end-of-archive record');
      count = safeNumber(z64.readBigUInt64LE(32));
      cdSize = safeNumber(z64.readBigUInt64LE(40));
      cdOffset = safeNumber(z64.readBigUInt64LE(48));
    }
    if (cdOffset + cdSize > eocdOffset) throw malformed('its central directory lies outside the file');
    if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES) {
      throw ApiError.invalid(
        'archive_too_large',
        `The archive's central directory has ${cdSize} bytes, more than the limit of ${MAX_CENTRAL_DIRECTORY_BYTES}`,
        undefined,
        413,
      );
    }
    const cd = await read(file, cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) throw malformed(`central directory entry ${i + 1} is broken`);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      const end = p + 46 + nameLength + extraLength + commentLength;
      if (end > cd.length) throw malformed(`central directory entry ${i + 1} runs past the directory`);
      const flags = cd.readUInt16LE(p + 8);
      const rawName = cd.subarray(p + 46, p + 46 + nameLength);
      // Bit 11: the name is UTF-8. Without it the name is CP437; ASCII names read the same either way.
      const name = rawName.toString(flags & 0x800 ? 'utf8' : 'latin1');
      const entry: ZipEntry = {
        name,
        flags,
        method: cd.readUInt16LE(p + 10),
        crc32: cd.readUInt32LE(p + 16),
        compressedSize: cd.readUInt32LE(p + 20),
        declaredSize: cd.readUInt32LE(p + 24),
        localOffset: cd.readUInt32LE(p + 42),
        mode: cd.readUInt32LE(p + 38) >>> 16,
      };
      if (entry.declaredSize === 0xffffffff || entry.compressedSize === 0xffffffff || entry.localOffset === 0xffffffff) {
        zip64Sizes(entry, cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength));
      }
      entries.push(entry);
      p = end;
    }
    return new ZipArchive(file, entries, cdOffset);
  }

  /**
   * The entry's bytes, inflated and checked (sizes, CRC-32), refused past the limits as soon as
   * the inflated bytes pass them. Entries must be read in the order of their data in the file
   * (`inFileOrder`): an entry whose data overlaps the one before is refused, the trick of
   * archives whose entries all point at the same compressed bytes.
   */
  async read(entry: ZipEntry, limits: InflateLimits, after: number): Promise<{ data: Buffer; end: number }> {
    const where = entry.name;
    if (entry.localOffset < after) throw ApiError.invalid('archive_malformed', `${where}: its data overlaps another entry's`);
    const header = await read(this.file, entry.localOffset, 30);
    if (header.readUInt32LE(0) !== LOCAL) throw ApiError.invalid('archive_malformed', `${where}: its local header is missing`);
    const start = entry.localOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
    const end = start + entry.compressedSize;
    if (end > this.centralOffset) throw ApiError.invalid('archive_malformed', `${where}: its data runs past the end of the entries`);
    const tooLarge = (message: string) => ApiError.invalid('archive_entry_too_large', `${where}: ${message}`, undefined, 413);
    const parts: Buffer[] = [];
    let total = 0;
    const count = (length: number) => {
      total += length;
      if (total > limits.remaining) throw limits.onTotal(where);
      if (total > limits.maxEntryBytes) throw tooLarge(`inflates past ${limits.maxEntryBytes} bytes, the limit of one image`);
      if (total > RATIO_FLOOR && total > limits.maxRatio * entry.compressedSize) {
        throw tooLarge(
          `inflates to more than ${limits.maxRatio} times its ${entry.compressedSize} compressed bytes (DATASET_ZIP_MAX_RATIO): refused as a zip bomb`,
        );
      }
    };
    const take = (chunk: Buffer) => {
      count(chunk.length);
      parts.push(chunk);
    };
    if (entry.method === 8 && entry.compressedSize > 0 && entry.compressedSize <= SMALL_ENTRY_BYTES) {
      // Most images: one read and one synchronous inflate, which zlib itself stops past the same caps.
      const cap = Math.min(limits.remaining, limits.maxEntryBytes, Math.max(RATIO_FLOOR, limits.maxRatio * entry.compressedSize));
      const input = await read(this.file, start, entry.compressedSize);
      try {
        take(inflateRawSync(input, { maxOutputLength: cap + 1 }));
      } catch (err) {
        if (err instanceof ApiError) throw err;
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') count(cap + 1);
        throw ApiError.invalid('archive_malformed', `${where}: its compressed data is corrupt or truncated (${(err as Error).message})`);
      }
      return this.checked(entry, Buffer.concat(parts, total), end);
    }
    // Not file.createReadStream: destroying that stream closes the shared handle.
    const raw = Readable.from(chunks(this.file, start, end));
    try {
      if (entry.compressedSize === 0) {
        raw.destroy();
      } else if (entry.method === 0) {
        for await (const chunk of raw as AsyncIterable<Buffer>) take(chunk);
      } else {
        const inflate = createInflateRaw({ chunkSize: 64 * 1024 });
        raw.on('error', (err) => inflate.destroy(err));
        raw.pipe(inflate);
        try {
          for await (const chunk of inflate as AsyncIterable<Buffer>) take(chunk);
        } catch (err) {
          if (err instanceof ApiError) throw err;
          throw ApiError.invalid('archive_malformed', `${where}: its compressed data is corrupt or truncated (${(err as Error).message})`);
        } finally {
          raw.unpipe(inflate);
          inflate.destroy();
        }
      }
    } finally {
      raw.destroy();
    }
    return this.checked(entry, Buffer.concat(parts, total), end);
  }

  private checked(entry: ZipEntry, data: Buffer, end: number): { data: Buffer; end: number } {
    const where = entry.name;
    const total = data.length;
    if (total !== entry.declaredSize)
      throw ApiError.invalid('archive_malformed', `${where}: inflates to ${total} bytes, its header declares ${entry.declaredSize}`);
    if (crc32(data) >>> 0 !== entry.crc32)
      throw ApiError.invalid('archive_malformed', `${where}: its CRC-32 does not match its data (a corrupt archive)`);
    return { data, end };
  }
}

/** Entries by where their data sits in the file: read in this order, the file is read front to back once. */
export function inFileOrder(entries: ZipEntry[]): ZipEntry[] {
  return [...entries].sort((a, b) => a.localOffset - b.localOffset);
}

/** The ZIP64 extended information field (0x0001): the 64-bit values of the fields set to 0xFFFFFFFF, in this order. */
function zip64Sizes(entry: ZipEntry, extra: Buffer): void {
  for (let p = 0; p + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(p);
    const length = extra.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const next = () => {
        if (q + 8 > p + 4 + length) throw malformed(`${entry.name}: a short ZIP64 field`);
        const v = safeNumber(extra.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (entry.declaredSize === 0xffffffff) entry.declaredSize = next();
      if (entry.compressedSize === 0xffffffff) entry.compressedSize = next();
      if (entry.localOffset === 0xffffffff) entry.localOffset = next();
      return;
    }
    p += 4 + length;
  }
  throw malformed(`${entry.name}: its sizes need a ZIP64 field it does not have`);
}

function safeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('an offset or size beyond 2^53');
  return Number(v);
}

/** The bytes of [start, end) of the file, 64 KiB at a time. */
async function* chunks(file: FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
  for (let at = start; at < end; ) {
    const length = Math.min(64 * 1024, end - at);
    const chunk = await read(file, at, length);
    at += length;
    yield chunk;
  }
}

async function read(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  if (bytesRead !== length) throw malformed('it ends early');
  return buffer;
}
