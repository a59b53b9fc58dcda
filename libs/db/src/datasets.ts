import { newId } from '@app/common';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { camelRow, type Database } from './database.js';
import type { Dataset } from './generated/client.js';
import { pageArgs, type PageQuery } from './pagination.js';

export type { Dataset };
export type DatasetRow = Record<string, string | number | null>;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Rows per stored chunk: small enough to stream, large enough to compress well. */
const CHUNK_ROWS = 2_000;
/** Stored chunks a reader of the rows fetches ahead of the one it hands out. */
const READ_AHEAD = 2;
/** …or fewer, once their JSON passes this (2,000 photos would make a chunk of hundreds of MB). */
const CHUNK_BYTES = 8 * 1024 * 1024;

export interface NewDataset {
  name: string;
  task: 'classification' | 'regression' | 'text-classification' | 'image-classification';
  label: string;
  textField: string | null;
  format: 'json' | 'csv' | 'ndjson' | 'zip';
}

export interface DatasetStats {
  rows: number;
  columns: unknown;
  bytes: number;
  sha256: string;
}

/** Compressed bytes a spool keeps in memory before it moves them to a temporary file. */
const SPOOL_MEMORY_BYTES = 4 * 1024 * 1024;

interface SpooledChunk {
  rows: number;
  bytes: number;
  /** In memory until the spool spills, then only a length in the file. */
  data: Buffer | null;
}

/**
 * An upload's rows, gzipped in chunks, held until the whole body has arrived and been validated:
 * in memory up to SPOOL_MEMORY_BYTES, then in a temporary file. Nothing touches PostgreSQL while
 * the client is still sending, so a slow or vanished client holds no pooled connection; the
 * dataset is written afterwards in one short transaction (`DatasetRepository.store`).
 */
export class DatasetSpool {
  private pending: string[] = [];
  private pendingBytes = 0;
  private readonly chunks: SpooledChunk[] = [];
  private memoryBytes = 0;
  private file: { handle: FileHandle } | null = null;
  private discarded = false;

  async append(row: DatasetRow): Promise<void> {
    const line = JSON.stringify(row);
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pending.length >= CHUNK_ROWS || this.pendingBytes >= CHUNK_BYTES) await this.flush();
  }

  /** Compressed bytes held (memory and file). */
  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.bytes, 0);
  }

  /** The chunks in order, one in memory at a time. */
  async *read(): AsyncGenerator<{ seq: number; rows: number; data: Buffer }> {
    await this.flush();
    let offset = 0;
    for (let seq = 0; seq < this.chunks.length; seq++) {
      const chunk = this.chunks[seq];
      let data = chunk.data;
      if (!data) {
        data = Buffer.alloc(chunk.bytes);
        await this.file!.handle.read(data, 0, chunk.bytes, offset);
      }
      offset += chunk.bytes;
      yield { seq, rows: chunk.rows, data };
    }
  }

  /** Frees memory and removes the temporary file; safe to call twice. */
  async discard(): Promise<void> {
    if (this.discarded) return;
    this.discarded = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.chunks.length = 0;
    const file = this.file;
    this.file = null;
    if (file) await file.handle.close().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    if (this.discarded) throw new Error('the spool was discarded');
    const data = await gzipAsync(Buffer.from(`${this.pending.join('\n')}\n`));
    const chunk: SpooledChunk = { rows: this.pending.length, bytes: data.length, data };
    this.pending = [];
    this.pendingBytes = 0;
    this.chunks.push(chunk);
    this.memoryBytes += data.length;
    if (this.file) await this.spill([chunk]);
    else if (this.memoryBytes > SPOOL_MEMORY_BYTES) {
      const dir = await mkdtemp(join(tmpdir(), 'aiaas-upload-'));
      const path = join(dir, 'chunks');
      this.file = { handle: await open(path, 'w+', 0o600) };
      // Unlinked at once: the open handle keeps the file until discard() closes it, and a process
      // that dies mid-upload leaves nothing on disk.
      await rm(dir, { recursive: true, force: true });
      await this.spill(this.chunks);
    }
  }

  private async spill(chunks: SpooledChunk[]): Promise<void> {
    for (const c of chunks) {
      if (!c.data) continue;
      await this.file!.handle.write(c.data);
      this.memoryBytes -= c.data.length;
      c.data = null;
    }
  }
}

export class DatasetRepository {
  constructor(private readonly db: Database) {}

  /**
   * Writes a validated dataset from its spool in one transaction: the tenant's storage first
   * (refused past `maxStorageBytes`: then null and nothing is written), the row, its chunks.
   * The transaction never waits on a client, so it holds its connection only for the writes.
   */
  async store(
    tenantId: string,
    meta: NewDataset,
    spool: DatasetSpool,
    stats: DatasetStats,
    maxStorageBytes: number,
  ): Promise<Dataset | null> {
    const client = await this.db.pool.connect();
    let release: Error | undefined;
    try {
      await client.query('BEGIN');
      const room = await client.query(
        'UPDATE tenant_usage SET storage_bytes = storage_bytes + $2 WHERE tenant_id = $1 AND storage_bytes + $2 <= $3 RETURNING storage_bytes',
        [tenantId, stats.bytes, maxStorageBytes],
      );
      if (room.rowCount !== 1) {
        await client.query('ROLLBACK');
        return null;
      }
      const id = newId('ds');
      const { rows } = await client.query(
        `INSERT INTO datasets (id, tenant_id, name, task, label, text_field, format, rows, columns, bytes, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id, tenant_id AS "tenantId", name, task, label, text_field AS "textField", format, rows, columns, bytes, sha256, created_at AS "createdAt"`,
        [
          id,
          tenantId,
          meta.name,
          meta.task,
          meta.label,
          meta.textField,
          meta.format,
          stats.rows,
          JSON.stringify(stats.columns),
          stats.bytes,
          stats.sha256,
        ],
      );
      for await (const chunk of spool.read()) {
        await client.query('INSERT INTO dataset_chunks (dataset_id, seq, rows, data) VALUES ($1, $2, $3, $4)', [
          id,
          chunk.seq,
          chunk.rows,
          chunk.data,
        ]);
      }
      await client.query('COMMIT');
      return rows[0] as Dataset;
    } catch (err) {
      // A connection whose ROLLBACK fails is broken: destroy it rather than return it to the pool.
      await client.query('ROLLBACK').catch((e: Error) => (release = e));
      throw err;
    } finally {
      client.release(release);
    }
  }

  async get(tenantId: string, id: string): Promise<Dataset | null> {
    // Plain pg: every job that reads a dataset is validated against it.
    const { rows } = await this.db.pool.query('SELECT * FROM datasets WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
    return camelRow<Dataset>(rows[0]);
  }

  async list(tenantId: string, query: PageQuery & { task?: NewDataset['task'] }): Promise<Dataset[]> {
    const cursor = query.starting_after ? await this.get(tenantId, query.starting_after) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.dataset.findMany({
      ...args,
      where: { ...args.where, tenantId, ...(query.task ? { task: toDbTask(query.task) } : {}) },
    });
  }

  /** Deletes the dataset and gives its bytes back to the tenant's storage, in one transaction. */
  async delete(tenantId: string, id: string): Promise<Dataset | null> {
    return this.db.prisma.$transaction(async (tx) => {
      const ds = await tx.dataset.findFirst({ where: { tenantId, id } });
      if (!ds) return null;
      await tx.dataset.delete({ where: { id } });
      await tx.$executeRaw`UPDATE tenant_usage SET storage_bytes = GREATEST(0, storage_bytes - ${ds.bytes}) WHERE tenant_id = ${tenantId}`;
      return ds;
    });
  }

  /** The dataset's rows in upload order, one chunk in memory at a time. */
  async *rows(tenantId: string, id: string): AsyncGenerator<DatasetRow> {
    for await (const lines of this.lines(tenantId, id)) for (const line of lines) yield JSON.parse(line) as DatasetRow;
  }

  /**
   * The dataset's rows as stored (one JSON object a line, every column in the dataset's order), a
   * stored chunk's lines at a time (a yield per line would cost more than the rows), in upload
   * order from row `from` (0-based): the chunks before it are skipped by their row counts, never
   * read. The next READ_AHEAD chunks are fetched and inflated while the caller works on this one.
   */
  async *lines(tenantId: string, id: string, from = 0): AsyncGenerator<string[]> {
    const ds = await this.get(tenantId, id);
    if (!ds) return;
    const { rows: chunks } = await this.db.pool.query<{ seq: number; rows: number }>(
      'SELECT seq, rows FROM dataset_chunks WHERE dataset_id = $1 ORDER BY seq',
      [id],
    );
    const wanted: Array<{ seq: number; skip: number }> = [];
    let first = 0;
    for (const chunk of chunks) {
      const skip = Math.max(0, from - first);
      first += chunk.rows;
      if (skip < chunk.rows) wanted.push({ seq: chunk.seq, skip });
    }
    const read = async (seq: number): Promise<string[] | null> => {
      const { rows } = await this.db.pool.query<{ data: Buffer }>('SELECT data FROM dataset_chunks WHERE dataset_id = $1 AND seq = $2', [
        id,
        seq,
      ]);
      if (rows.length === 0) return null;
      const lines = (await gunzipAsync(rows[0].data)).toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      return lines;
    };
    const ahead: Array<Promise<string[] | null>> = [];
    const fetchNext = (k: number) => {
      if (k >= wanted.length) return;
      const p = read(wanted[k].seq);
      // awaited in order below; a caller that stops early leaves it unread
      p.catch(() => undefined);
      ahead.push(p);
    };
    for (let k = 0; k < Math.min(READ_AHEAD + 1, wanted.length); k++) fetchNext(k);
    for (let k = 0; k < wanted.length; k++) {
      const lines = await ahead.shift()!;
      fetchNext(k + READ_AHEAD + 1);
      if (!lines) return;
      yield wanted[k].skip > 0 ? lines.slice(wanted[k].skip) : lines;
    }
  }
}

/** The dataset's column names, in its order (from the column summaries stored at upload). */
export function datasetColumns(ds: Pick<Dataset, 'columns'>): string[] {
  return ((ds.columns ?? []) as Array<{ name: string }>).map((c) => c.name);
}

/** Prisma names the enum values `text_classification`, `image_classification`; the API and the database say `text-classification`, `image-classification`. */
export function toDbTask(task: NewDataset['task']) {
  return task === 'text-classification'
    ? ('text_classification' as const)
    : task === 'image-classification'
      ? ('image_classification' as const)
      : task;
}

export function fromDbTask(task: string): NewDataset['task'] {
  return task === 'text_classification'
    ? 'text-classification'
    : task === 'image_classification'
      ? 'image-classification'
      : (task as NewDataset['task']);
}
