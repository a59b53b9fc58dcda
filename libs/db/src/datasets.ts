import { newId } from '@app/common';
import type pg from 'pg';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { camelRow, type Database } from './database.js';
import type { Dataset } from './generated/client.js';
import { pageArgs, type PageQuery } from './pagination.js';

export type { Dataset };
export type DatasetRow = Record<string, string | number | null>;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Rows per stored chunk: small enough to stream, large enough to compress well. */
const CHUNK_ROWS = 2_000;

export interface NewDataset {
  name: string;
  task: 'classification' | 'regression' | 'text-classification';
  label: string;
  textField: string | null;
  format: 'json' | 'csv' | 'ndjson';
}

export interface DatasetStats {
  rows: number;
  columns: unknown;
  bytes: number;
  sha256: string;
}

/**
 * Writes one dataset inside one transaction: the row first (so that chunks can reference it),
 * then its chunks as rows arrive, then its statistics and the tenant's storage. `abort()` rolls
 * all of it back, so a refused upload leaves nothing behind.
 */
export class DatasetWriter {
  private pending: string[] = [];
  private seq = 0;
  private closed = false;

  private constructor(
    private readonly client: pg.PoolClient,
    readonly id: string,
    readonly tenantId: string,
  ) {}

  static async open(db: Database, tenantId: string, meta: NewDataset): Promise<DatasetWriter> {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const id = newId('ds');
      await client.query(
        `INSERT INTO datasets (id, tenant_id, name, task, label, text_field, format, rows, columns, bytes, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, '[]', 0, '')`,
        [id, tenantId, meta.name, meta.task, meta.label, meta.textField, meta.format],
      );
      return new DatasetWriter(client, id, tenantId);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
      throw err;
    }
  }

  async append(row: DatasetRow): Promise<void> {
    this.pending.push(JSON.stringify(row));
    if (this.pending.length >= CHUNK_ROWS) await this.flush();
  }

  /**
   * Stores the statistics and adds the bytes to the tenant's storage, unless that would pass
   * `maxStorageBytes`: then returns false and the caller aborts.
   */
  async commit(stats: DatasetStats, maxStorageBytes: number): Promise<Dataset | null> {
    await this.flush();
    const room = await this.client.query(
      `UPDATE tenant_usage SET storage_bytes = storage_bytes + $2 WHERE tenant_id = $1 AND storage_bytes + $2 <= $3 RETURNING storage_bytes`,
      [this.tenantId, stats.bytes, maxStorageBytes],
    );
    if (room.rowCount !== 1) return null;
    const { rows } = await this.client.query(
      `UPDATE datasets SET rows = $2, columns = $3, bytes = $4, sha256 = $5 WHERE id = $1
       RETURNING id, tenant_id AS "tenantId", name, task, label, text_field AS "textField", format, rows, columns, bytes, sha256, created_at AS "createdAt"`,
      [this.id, stats.rows, JSON.stringify(stats.columns), stats.bytes, stats.sha256],
    );
    await this.client.query('COMMIT');
    this.close();
    return rows[0] as Dataset;
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    await this.client.query('ROLLBACK').catch(() => undefined);
    this.close();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const data = await gzipAsync(Buffer.from(this.pending.join('\n') + '\n'));
    await this.client.query('INSERT INTO dataset_chunks (dataset_id, seq, rows, data) VALUES ($1, $2, $3, $4)', [this.id, this.seq++, this.pending.length, data]);
    this.pending = [];
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.release();
  }
}

export class DatasetRepository {
  constructor(private readonly db: Database) {}

  open(tenantId: string, meta: NewDataset): Promise<DatasetWriter> {
    return DatasetWriter.open(this.db, tenantId, meta);
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
    const ds = await this.get(tenantId, id);
    if (!ds) return;
    for (let seq = 0; ; seq++) {
      const { rows } = await this.db.pool.query<{ data: Buffer }>('SELECT data FROM dataset_chunks WHERE dataset_id = $1 AND seq = $2', [id, seq]);
      if (rows.length === 0) return;
      const text = (await gunzipAsync(rows[0].data)).toString('utf8');
      for (const line of text.split('\n')) if (line) yield JSON.parse(line) as DatasetRow;
    }
  }
}

/** Prisma names the enum value `text_classification`; the API and the database say `text-classification`. */
export function toDbTask(task: NewDataset['task']) {
  return task === 'text-classification' ? ('text_classification' as const) : task;
}

export function fromDbTask(task: string): NewDataset['task'] {
  return task === 'text_classification' ? 'text-classification' : (task as NewDataset['task']);
}
