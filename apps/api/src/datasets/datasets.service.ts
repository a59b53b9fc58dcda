import { ApiError } from '@app/common';
import { DatasetRepository, JobRepository, type NewDataset, type PageQuery, toPage } from '@app/db';
import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { TenantPrincipal } from '../auth/principal.js';
import { ByteMeter, csvRecords, jsonRecords, ndjsonRecords, type SourceRecord } from './dataset-sources.js';
import { DatasetValidator, type Task } from './dataset-validator.js';
import { datasetView } from './datasets.dto.js';
import { UsageCache } from '../me/usage-cache.js';

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
    const limit = Math.min(MAX_UPLOAD_BYTES, p.quotas.max_storage_bytes);
    const meter = new ByteMeter(limit, () => (limit === MAX_UPLOAD_BYTES ? ApiError.invalid('body_too_large', `Uploads are limited to ${MAX_UPLOAD_BYTES} bytes`, undefined, 413) : storageRefusal(p)));
    body.pipe(meter);
    let validator: DatasetValidator | undefined;
    const source = format === 'csv' ? csvRecords(meter, (columns) => validator!.setColumns(columns, 'the header')) : ndjsonRecords(meter);
    try {
      return await this.store(p, meta, format, source, () => ({ bytes: meter.bytes, sha256: meter.digest() }), (v) => (validator = v));
    } finally {
      // Read what the client still sends, so that it receives our answer instead of a reset connection.
      body.unpipe(meter);
      if (!body.readableEnded) body.resume();
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
    const textField = meta.task === 'text-classification' ? (meta.text_field ?? 'text') : null;
    if (meta.task !== 'text-classification' && meta.text_field) {
      throw ApiError.invalid('parameter_invalid', 'text_field applies to text-classification datasets only', 'text_field');
    }
    if (textField === label) throw ApiError.invalid('parameter_invalid', 'text_field and label must be different columns', 'text_field');
    const validator = new DatasetValidator(meta.task, label, textField, p.quotas.max_dataset_rows);
    onValidator?.(validator);
    const writer = await this.datasets.open(p.tenantId, { name: meta.name, task: meta.task, label, textField, format });
    try {
      for await (const { record, where } of source) await writer.append(validator.accept(record, where));
      const columns = validator.finish();
      const { bytes, sha256 } = raw();
      const stored = await writer.commit({ rows: validator.rows, columns, bytes, sha256 }, p.quotas.max_storage_bytes);
      if (!stored) throw storageRefusal(p);
      await this.usage.changed(p.tenantId);
      return datasetView(stored);
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }
}

function storageRefusal(p: TenantPrincipal): ApiError {
  return new ApiError(413, 'quota_exceeded_error', 'max_storage_bytes', `This upload would take the tenant past its storage quota (max_storage_bytes = ${p.quotas.max_storage_bytes})`);
}
