import { crc32, deflateRawSync } from 'node:zlib';

/** One entry of a test archive; the overrides build the archives a hostile client would send. */
export interface ZipInput {
  name: string;
  data?: Buffer;
  /** 0 stored, 8 deflate (default), or any other number written as is. */
  method?: number;
  /** Unix mode bits written into the external attributes (e.g. 0o120777 for a symlink). */
  mode?: number;
  /** Sets the "encrypted" flag (bit 0); the data is left as it is. */
  encrypted?: boolean;
  /** The uncompressed size the headers declare, instead of the real one. */
  declaredSize?: number;
  /** The central directory entry points at the data of entry number `sameDataAs` (no data of its own): overlapping entries. */
  sameDataAs?: number;
}

/**
 * A zip archive in memory, written the way `zip` writes one (local headers, data, a central
 * directory, the end record). No ZIP64: tests stay far below 4 GiB and 65,535 entries.
 */
export function zipArchive(entries: ZipInput[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const written: { offset: number; crc: number; compressed: number; size: number; method: number }[] = [];
  for (const e of entries) {
    if (e.sameDataAs !== undefined) {
      const target = written[e.sameDataAs];
      const name = Buffer.from(e.name, 'utf8');
      const cd = Buffer.alloc(46);
      cd.writeUInt32LE(0x02014b50, 0);
      cd.writeUInt16LE((3 << 8) | 20, 4);
      cd.writeUInt16LE(20, 6);
      cd.writeUInt16LE(0x800, 8);
      cd.writeUInt16LE(target.method, 10);
      cd.writeUInt32LE(target.crc, 16);
      cd.writeUInt32LE(target.compressed, 20);
      cd.writeUInt32LE(target.size, 24);
      cd.writeUInt16LE(name.length, 28);
      cd.writeUInt32LE((0o100644 << 16) >>> 0, 38);
      cd.writeUInt32LE(target.offset, 42);
      central.push(cd, name);
      written.push(target);
      continue;
    }
    const data = e.data ?? Buffer.alloc(0);
    const method = e.method ?? (e.name.endsWith('/') ? 0 : 8);
    const body = method === 8 ? deflateRawSync(data) : data;
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(data) >>> 0;
    const size = e.declaredSize ?? data.length;
    const flags = 0x800 | (e.encrypted ? 1 : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 20, 4); // made by Unix: the external attributes carry a mode
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    const mode = e.mode ?? (e.name.endsWith('/') ? 0o040755 : 0o100644);
    cd.writeUInt32LE(((mode << 16) | (e.name.endsWith('/') ? 0x10 : 0)) >>> 0, 38);
    cd.writeUInt32LE(offset, 42);
    written.push({ offset, crc, compressed: body.length, size, method });
    locals.push(local, name, body);
    central.push(cd, name);
    offset += local.length + name.length + body.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cdBytes, end]);
}
