import { newId } from '@app/common';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { camelRow, type Database } from './database.js';
import type { File } from './generated/client.js';
import { pageArgs, type PageQuery } from './pagination.js';

export type { File };

export type OutputFormat = 'ndjson' | 'csv';

/** Bytes of a file read from PostgreSQL at a time (a chunk's part; EXTERNAL storage reads only its TOAST pages). */
const READ_SLICE = 64 * 1024;

export const CONTENT_TYPES: Record<OutputFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** The tenant's storage could not take the chunk: the job ends with the rows it wrote. */
export class StorageFull extends Error {
  override readonly name = 'StorageFull';
  readonly code = 'max_storage_bytes';
}

/** What of a file is committed: its rows, bytes and chunks (a resumed job goes on from there). */
export interface Committed {
  rows: number;
  bytes: number;
  chunks: number;
}

/**
 * Output files (batch prediction), chunked in PostgreSQL so that every worker and API instance
 * reaches them: a job's file is created on its first attempt and found again by the next; each
 * chunk is appended in the transaction of the job's checkpoint (`append` takes that client), its
 * bytes counted in the tenant's `max_storage_bytes` there; `finish` makes it readable and starts
 * its retention. Content is read chunk by chunk, never whole.
 */
export class FileRepository {
  constructor(private readonly db: Database) {}

  /**
   * The job's file, created on its first attempt; the same row (and its version) on every later
   * one, open for writing again (an admin retry of a failed job goes on after the rows it kept).
   */
  async forJob(job: { id: string; tenantId: string }, format: OutputFormat, includeInputs: boolean, version: number): Promise<File> {
    const { rows } = await this.db.pool.query(
      `WITH created AS (
         INSERT INTO files (id, tenant_id, job_id, format, content_type, include_inputs, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (job_id) DO UPDATE SET status = 'writing', sha256 = NULL, expires_at = NULL
         RETURNING *)
       SELECT * FROM created`,
      [newId('file'), job.tenantId, job.id, format, CONTENT_TYPES[format], includeInputs, version],
    );
    return camelRow<File>(rows[0])!;
  }

  /** The job's file, if an earlier attempt created it. */
  async ofJob(jobId: string): Promise<File | null> {
    const { rows } = await this.db.pool.query('SELECT * FROM files WHERE job_id = $1', [jobId]);
    return camelRow<File>(rows[0]);
  }

  /**
   * Finishes the files still `writing` whose job has ended without finishing them (its worker was
   * lost with no attempts left, so no worker kept its rows): each with the rows it holds, named in
   * its job's `result` as a failed job's partial file is. The reconciler's; how many it finished.
   */
  async finishOrphans(retentionSeconds: number, limit = 100): Promise<number> {
    const { rows } = await this.db.pool.query<{ id: string }>(
      `SELECT f.id FROM files f JOIN jobs j ON j.id = f.job_id
        WHERE f.status = 'writing' AND j.status IN ('succeeded', 'failed', 'canceled') LIMIT $1`,
      [limit],
    );
    for (const { id } of rows) {
      await this.finishAsIs(id, retentionSeconds);
      await this.db.pool.query(
        `UPDATE jobs j SET result = jsonb_build_object('output_file_id', f.id, 'rows', f.rows, 'format', f.format, 'version', f.version),
                updated_at = now()
           FROM files f WHERE f.id = $1 AND j.id = f.job_id AND j.result IS NULL AND j.status IN ('failed', 'canceled')`,
        [id],
      );
    }
    return rows.length;
  }

  /** What an earlier attempt committed of the file. */
  async committed(fileId: string): Promise<Committed> {
    const { rows } = await this.db.pool.query<{ rows: string; bytes: string; chunks: string }>(
      'SELECT coalesce(sum(rows), 0) AS rows, coalesce(sum(bytes), 0) AS bytes, count(*) AS chunks FROM file_chunks WHERE file_id = $1',
      [fileId],
    );
    return { rows: Number(rows[0].rows), bytes: Number(rows[0].bytes), chunks: Number(rows[0].chunks) };
  }

  /**
   * Appends a chunk in the caller's transaction, after `at` (what is committed before it), and
   * counts its bytes in the tenant's storage; StorageFull (nothing written) past `maxStorageBytes`.
   */
  async append(client: pg.PoolClient, file: File, at: Committed, rows: number, data: Buffer, maxStorageBytes: number): Promise<void> {
    const counted = await client.query(
      'UPDATE tenant_usage SET storage_bytes = storage_bytes + $2 WHERE tenant_id = $1 AND storage_bytes + $2 <= $3',
      [file.tenantId, data.length, maxStorageBytes],
    );
    if (counted.rowCount === 0) {
      throw new StorageFull(
        `The output file reached the tenant's max_storage_bytes of ${maxStorageBytes} after ${at.rows} rows; delete files, datasets or model versions to make room`,
      );
    }
    await client.query(
      'INSERT INTO file_chunks (file_id, seq, first_row, rows, byte_offset, bytes, data) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [file.id, at.chunks, at.rows, rows, at.bytes, data.length, data],
    );
    await client.query('UPDATE files SET rows = rows + $2, bytes = bytes + $3 WHERE id = $1', [file.id, rows, data.length]);
  }

  /** The sha256 of what is committed, read chunk by chunk (a resumed attempt's start). */
  async hashOf(fileId: string): Promise<ReturnType<typeof createHash>> {
    const hash = createHash('sha256');
    for await (const part of this.content(fileId, 0, Number.MAX_SAFE_INTEGER)) hash.update(part);
    return hash;
  }

  /** Readable from now on, with its sha256; it expires `retentionSeconds` later. */
  async finish(client: Pick<pg.Pool, 'query'> | null, fileId: string, sha256: string, retentionSeconds: number): Promise<void> {
    await (client ?? this.db.pool).query(
      `UPDATE files SET status = 'ready', sha256 = $2, expires_at = now() + make_interval(secs => $3) WHERE id = $1 AND status = 'writing'`,
      [fileId, sha256, retentionSeconds],
    );
  }

  /** Readable from now on as it stands: what is committed, hashed as it is read back (a job that ends without succeeding). */
  async finishAsIs(fileId: string, retentionSeconds: number): Promise<void> {
    await this.finish(null, fileId, (await this.hashOf(fileId)).digest('hex'), retentionSeconds);
  }

  /** A readable file of the tenant (not expired). */
  async get(tenantId: string, id: string): Promise<File | null> {
    const { rows } = await this.db.pool.query(
      `SELECT * FROM files WHERE id = $1 AND tenant_id = $2 AND status = 'ready' AND expires_at > now()`,
      [id, tenantId],
    );
    return camelRow<File>(rows[0]);
  }

  async list(tenantId: string, query: PageQuery): Promise<File[]> {
    const cursor = query.starting_after ? await this.get(tenantId, query.starting_after) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.file.findMany({
      ...args,
      where: { ...args.where, tenantId, status: 'ready', expiresAt: { gt: new Date() } },
    });
  }

  /** Deletes the file and gives its bytes back to the tenant's storage, in one statement. */
  async delete(tenantId: string, id: string): Promise<boolean> {
    const { rows } = await this.db.pool.query(
      `WITH gone AS (DELETE FROM files WHERE id = $1 AND tenant_id = $2 AND status = 'ready' AND expires_at > now() RETURNING tenant_id, bytes)
       UPDATE tenant_usage u SET storage_bytes = GREATEST(0, u.storage_bytes - g.bytes) FROM gone g WHERE u.tenant_id = g.tenant_id
       RETURNING u.tenant_id`,
      [id, tenantId],
    );
    return rows.length > 0;
  }

  /**
   * Deletes up to `limit` expired files and gives their bytes back; the count deleted. A file
   * still being written has no expiry yet and is never swept.
   */
  async sweep(limit = 500): Promise<number> {
    const { rows } = await this.db.pool.query<{ n: string }>(
      `WITH gone AS (
         DELETE FROM files WHERE id IN (SELECT id FROM files WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING tenant_id, bytes),
       given AS (
         UPDATE tenant_usage u SET storage_bytes = GREATEST(0, u.storage_bytes - g.bytes)
           FROM (SELECT tenant_id, sum(bytes) AS bytes FROM gone GROUP BY tenant_id) g WHERE u.tenant_id = g.tenant_id)
       SELECT count(*) AS n FROM gone`,
      [limit],
    );
    return Number(rows[0].n);
  }

  /**
   * Bytes [start, end) of the content (end past the size: to the end), chunk by chunk: only the
   * chunks' part in the range is read from PostgreSQL, one chunk at a time.
   */
  async *content(fileId: string, start: number, end: number): AsyncGenerator<Buffer> {
    const { rows } = await this.db.pool.query<{ seq: number; byte_offset: string; bytes: number }>(
      'SELECT seq, byte_offset, bytes FROM file_chunks WHERE file_id = $1 AND byte_offset < $3 AND byte_offset + bytes > $2 ORDER BY seq',
      [fileId, start, end],
    );
    for (const chunk of rows) {
      const offset = Number(chunk.byte_offset);
      const to = Math.min(end, offset + chunk.bytes) - offset;
      // At most READ_SLICE bytes a query: what the reader holds at once stays small whatever the chunk.
      for (let from = Math.max(start, offset) - offset; from < to; from += READ_SLICE) {
        const { rows: data } = await this.db.pool.query<{ data: Buffer }>(
          'SELECT substring(data FROM $3 FOR $4) AS data FROM file_chunks WHERE file_id = $1 AND seq = $2',
          [fileId, chunk.seq, from + 1, Math.min(READ_SLICE, to - from)],
        );
        if (!data[0]) return;
        yield data[0].data;
      }
    }
  }
}
