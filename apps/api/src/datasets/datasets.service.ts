import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { DatasetRepository, DatasetSpool, JobRepository, type NewDataset, type PageQuery, toPage } from '@app/db';
import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { TenantPrincipal } from '../auth/principal.js';
import { ByteMeter, csvRecords, jsonRecords, ndjsonRecords, type SourceRecord } from './dataset-sources.js';
import { DatasetValidator, type Task } from './dataset-validator.js';
import { datasetView } from './datasets.dto.js';
import { UsageCache } from '../me/usage-cache.js';
import { UploadSlots } from './upload-slots.js';

export interface DatasetMeta {
  name: string;
  task: Task;
  label?: string;
  text_field?: string;
}

/** Upload size past which a dataset is refused whatever the quota (a JSON body is capped by BODY_LIMIT_BYTES). */
const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

@Injectable()
export class DatasetsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly uploads: UploadSlots,
    private readonly datasets: DatasetRepository,
    private readonly jobs: JobRepository,
    private readonly usage: UsageCache,
  ) {}

  createFromRecords(p: TenantPrincipal, meta: DatasetMeta, records: unknown[]) {
    const canonical = JSON.stringify(records);
    const stats = { bytes: Buffer.byteLength(canonical), sha256: createHash('sha256').update(canonical).digest('hex') };
    if (stats.bytes > p.quotas.max_storage_bytes) throw storageRefusal(p);
    return this.store(p, meta, 'json', jsonRecords(records), () => stats);
  }

  /** Streams a CSV or NDJSON upload: parsed, validated and stored row by row, never held whole. */
  async createFromUpload(p: TenantPrincipal, meta: DatasetMeta, format: 'csv' | 'ndjson', body: Readable) {
    let release: (() => Promise<void>) | undefined;
    const meter = new ByteMeter(Math.min(MAX_UPLOAD_BYTES, p.quotas.max_storage_bytes), () =>
      p.quotas.max_storage_bytes < MAX_UPLOAD_BYTES ? storageRefusal(p) : ApiError.invalid('body_too_large', `Uploads are limited to ${MAX_UPLOAD_BYTES} bytes`, undefined, 413),
    );
    try {
      release = await this.uploads.acquire(p.tenantId);
      // pipe() forwards data, not errors: a body that times out or loses its client must end the parse too.
      body.on('error', (err) => meter.destroy(err));
      body.pipe(meter);
      let validator: DatasetValidator | undefined;
      const limits = { maxRecordBytes: this.config.datasetMaxRecordBytes };
      const source = format === 'csv' ? csvRecords(meter, limits, (columns) => validator!.setColumns(columns, 'the header')) : ndjsonRecords(meter, limits);
      return await this.store(p, meta, format, source, () => ({ bytes: meter.bytes, sha256: meter.digest() }), (v) => (validator = v));
    } finally {
      await release?.();
      // Read what the client still sends, so that it receives our answer instead of a reset
      // connection; the body's own deadlines bound how long that can take.
      body.unpipe(meter);
      if (!body.readableEnded && !body.destroyed) body.resume();
    }
  }

  async list(tenantId: string, query: PageQuery & { task?: Task }) {
    return toPage(await this.datasets.list(tenantId, query), query.limit, datasetView);
  }

  async get(tenantId: string, id: string) {
    const ds = await this.datasets.get(tenantId, id);
    if (!ds) throw ApiError.notFound('dataset', id);
    return datasetView(ds);
  }

  async delete(tenantId: string, id: string) {
    if (await this.jobs.inUse(tenantId, { datasetId: id })) {
      throw new ApiError(409, 'invalid_request_error', 'dataset_in_use', `Dataset ${id} is used by a queued or running job; cancel it or wait for it to end`);
    }
    const ds = await this.datasets.delete(tenantId, id);
    if (!ds) throw ApiError.notFound('dataset', id);
    await this.usage.changed(tenantId);
    return { id, object: 'dataset' as const, deleted: true as const };
  }

  private async store(
    p: TenantPrincipal,
    meta: DatasetMeta,
    format: NewDataset['format'],
    source: AsyncIterable<SourceRecord>,
    raw: () => { bytes: number; sha256: string },
    onValidator?: (v: DatasetValidator) => void,
  ) {
    const label = meta.label ?? 'label';
    // A text dataset: text-classification (its text column defaults to "text"), or regression on text
    // (a numeric label beside a text column, named by text_field; trained on a foundation model).
    const textField = meta.task === 'text-classification' ? (meta.text_field ?? 'text') : meta.task === 'regression' ? (meta.text_field ?? null) : null;
    if (meta.task === 'classification' && meta.text_field) {
      throw ApiError.invalid('parameter_invalid', 'text_field applies to text-classification and regression datasets; for text labels use task text-classification', 'text_field');
    }
    if (textField === label) throw ApiError.invalid('parameter_invalid', 'text_field and label must be different columns', 'text_field');
    const validator = new DatasetValidator(meta.task, label, textField, { maxRows: p.quotas.max_dataset_rows, maxColumns: this.config.datasetMaxColumns });
    onValidator?.(validator);
    // Rows are spooled until the body has ended and passed every check; only then is PostgreSQL
    // touched, in one short transaction (a client that stalls or leaves holds no connection).
    const spool = new DatasetSpool();
    try {
      for await (const { record, where } of source) await spool.append(validator.accept(record, where));
      const columns = validator.finish();
      const { bytes, sha256 } = raw();
      const newDataset = { name: meta.name, task: meta.task, label, textField, format };
      const stored = await this.datasets.store(p.tenantId, newDataset, spool, { rows: validator.rows, columns, bytes, sha256 }, p.quotas.max_storage_bytes);
      if (!stored) throw storageRefusal(p);
      await this.usage.changed(p.tenantId);
      return datasetView(stored);
    } finally {
      await spool.discard();
    }
  }
}

function storageRefusal(p: TenantPrincipal): ApiError {
  return new ApiError(413, 'quota_exceeded_error', 'max_storage_bytes', `This upload would take the tenant past its storage quota (max_storage_bytes = ${p.quotas.max_storage_bytes})`);
}
