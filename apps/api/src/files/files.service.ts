import { ApiError } from '@app/common';
import { type File, FileRepository, type PageQuery, toPage } from '@app/db';
import { Injectable } from '@nestjs/common';
import { iso } from '../http/schemas.js';
import { UsageCache } from '../me/usage-cache.js';

/** A file as API.md shows it. */
export function fileView(f: File) {
  return {
    object: 'file' as const,
    id: f.id,
    purpose: f.purpose as 'batch_output',
    filename: fileName(f),
    bytes: Number(f.bytes),
    rows: f.rows,
    sha256: f.sha256!,
    content_type: f.contentType,
    job_id: f.jobId,
    created_at: iso(f.createdAt)!,
    expires_at: iso(f.expiresAt)!,
  };
}

/** The name a download is saved under: the job's id and the format. */
export function fileName(f: File): string {
  return `${f.jobId ?? f.id}.${f.format === 'csv' ? 'csv' : 'ndjson'}`;
}

/** The bytes a request asks for: all of them, or one range (`Range: bytes=a-b`, `a-`, `-n`). */
export type ByteRange = { start: number; end: number; partial: boolean };

/**
 * `Range` against a file of `size` bytes: the whole file without one (or with a unit or form it
 * does not read, which RFC 9110 says to ignore), one range when it is satisfiable; several ranges
 * get the whole file. An unsatisfiable range is a 416 with `Content-Range: bytes *\/size`.
 */
export function byteRange(header: string | undefined, size: number): ByteRange {
  const whole = { start: 0, end: size, partial: false };
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return whole;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    start = Math.max(0, size - suffix);
    end = size;
    if (suffix === 0) return unsatisfiable(size);
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
    if (m[2] !== '' && Number(m[2]) < start) return whole;
  }
  if (start >= size) return unsatisfiable(size);
  return { start, end, partial: true };
}

function unsatisfiable(size: number): never {
  throw new ApiError(416, 'invalid_request_error', 'range_not_satisfiable', `The range is outside the file's ${size} bytes`, 'Range', {
    'Content-Range': `bytes */${size}`,
  });
}

@Injectable()
export class FilesService {
  constructor(
    private readonly files: FileRepository,
    private readonly usage: UsageCache,
  ) {}

  async list(tenantId: string, query: PageQuery) {
    return toPage(await this.files.list(tenantId, query), query.limit, fileView);
  }

  async get(tenantId: string, id: string): Promise<File> {
    const file = await this.files.get(tenantId, id);
    if (!file) throw ApiError.notFound('file', id);
    return file;
  }

  content(file: File, range: ByteRange): AsyncGenerator<Buffer> {
    return this.files.content(file.id, range.start, range.end);
  }

  async delete(tenantId: string, id: string) {
    if (!(await this.files.delete(tenantId, id))) throw ApiError.notFound('file', id);
    await this.usage.changed(tenantId);
    return { id, object: 'file' as const, deleted: true as const };
  }
}
