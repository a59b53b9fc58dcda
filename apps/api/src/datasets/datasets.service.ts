import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { DatasetRepository, DatasetSpool, JobRepository, type NewDataset, type PageQuery, toPage } from '@app/db';
import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { TenantPrincipal } from '../auth/principal.js';
import { ByteMeter, csvRecords, jsonRecords, ndjsonRecords, type ReceivedFile, receiveFile, type SourceRecord } from './dataset-sources.js';
import { DatasetValidator, IMAGE_FIELD, type Task } from './dataset-validator.js';
import { ImageChecker } from './image-check.js';
import { classFolderImages, folderImageRecords } from './image-folders.js';
import { ZipArchive } from './zip-archive.js';
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
    const meter = uploadMeter(p);
    try {
      release = await this.uploads.acquire(p.tenantId);
      // pipe() forwards data, not errors: a body that times out or loses its client must end the parse too.
      body.on('error', (err) => meter.destroy(err));
      body.pipe(meter);
      let validator: DatasetValidator | undefined;
      const limits = { maxRecordBytes: this.config.datasetMaxRecordBytes };
      const source =
        format === 'csv'
          ? csvRecords(meter, limits, (columns) => validator!.setColumns(columns, 'the header'))
          : ndjsonRecords(meter, limits);
      return await this.store(
        p,
        meta,
        format,
        source,
        () => ({ bytes: meter.bytes, sha256: meter.digest() }),
        (v) => (validator = v),
      );
    } finally {
      await release?.();
      // Read what the client still sends, so that it receives our answer instead of a reset
      // connection; the body's own deadlines bound how long that can take.
      body.unpipe(meter);
      if (!body.readableEnded && !body.destroyed) body.resume();
    }
  }

  /**
   * An image-classification dataset from a zip of class folders. The body goes to an unlinked
   * temporary file as it arrives (its bytes bounded by the storage quota); then the central
   * directory is checked whole (paths, symlinks, encryption, layout, image count) before anything
   * is inflated, and the images are inflated, checked and spooled one at a time.
   */
  async createFromArchive(p: TenantPrincipal, meta: DatasetMeta, body: Readable) {
    if (meta.task !== 'image-classification') {
      throw ApiError.invalid(
        'parameter_invalid',
        `A zip upload is an image-classification dataset (one folder per class): send task=image-classification, not ${meta.task}`,
        'task',
      );
    }
    for (const param of ['label', 'text_field'] as const) {
      if (meta[param] !== undefined)
        throw ApiError.invalid('parameter_invalid', `A zip's labels are its folder names: ${param} does not apply`, param);
    }
    let release: (() => Promise<void>) | undefined;
    let file: ReceivedFile | undefined;
    const meter = uploadMeter(p);
    try {
      release = await this.uploads.acquire(p.tenantId);
      body.on('error', (err) => meter.destroy(err));
      body.pipe(meter);
      file = await receiveFile(meter);
      const archive = await ZipArchive.open(file.handle, file.size);
      const images = classFolderImages(archive.entries, p.quotas.max_dataset_rows);
      const quotaBound = p.quotas.max_storage_bytes <= this.config.datasetZipMaxInflatedBytes;
      const maxTotalBytes = Math.min(p.quotas.max_storage_bytes, this.config.datasetZipMaxInflatedBytes);
      let inflated = 0;
      const source = folderImageRecords(
        archive,
        images,
        {
          maxEntryBytes: this.config.datasetImageMaxBytes,
          maxRatio: this.config.datasetZipMaxRatio,
          maxTotalBytes,
          onTotal: (entry) =>
            quotaBound
              ? storageRefusal(p, entry)
              : ApiError.invalid(
                  'archive_too_large',
                  `${entry}: the archive inflates past ${maxTotalBytes} bytes (DATASET_ZIP_MAX_INFLATED_BYTES)`,
                  undefined,
                  413,
                ),
        },
        (total) => (inflated = total),
      );
      // The images' own bytes are what is stored and counted; the checksum is the archive's, as uploaded.
      return await this.store(p, meta, 'zip', source, () => ({ bytes: inflated, sha256: meter.digest() }));
    } finally {
      await file?.handle.close().catch(() => undefined);
      await release?.();
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
      throw new ApiError(
        409,
        'invalid_request_error',
        'dataset_in_use',
        `Dataset ${id} is used by a queued or running job; cancel it or wait for it to end`,
      );
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
    const textField =
      meta.task === 'text-classification' ? (meta.text_field ?? 'text') : meta.task === 'regression' ? (meta.text_field ?? null) : null;
    if (meta.task === 'classification' && meta.text_field) {
      throw ApiError.invalid(
        'parameter_invalid',
        'text_field applies to text-classification and regression datasets; for text labels use task text-classification',
        'text_field',
      );
    }
    if (textField === label) throw ApiError.invalid('parameter_invalid', 'text_field and label must be different columns', 'text_field');
    const imageTask = meta.task === 'image-classification';
    if (imageTask && meta.text_field)
      throw ApiError.invalid(
        'parameter_invalid',
        `text_field does not apply to image-classification datasets (the images are in '${IMAGE_FIELD}')`,
        'text_field',
      );
    if (imageTask && label === IMAGE_FIELD)
      throw ApiError.invalid('parameter_invalid', `The label column cannot be '${IMAGE_FIELD}', which holds the images`, 'label');
    const validator = new DatasetValidator(meta.task, label, textField, {
      maxRows: p.quotas.max_dataset_rows,
      maxColumns: this.config.datasetMaxColumns,
    });
    const images = imageTask
      ? new ImageChecker({ maxBytes: this.config.datasetImageMaxBytes, maxPixels: this.config.datasetImageMaxPixels })
      : null;
    onValidator?.(validator);
    // Rows are spooled until the body has ended and passed every check; only then is PostgreSQL
    // touched, in one short transaction (a client that stalls or leaves holds no connection).
    const spool = new DatasetSpool();
    try {
      for await (const { record, where, image } of source) {
        const row = validator.accept(record, where);
        if (images) await images.check(image ?? Buffer.from(row[IMAGE_FIELD] as string, 'base64'), where);
        await spool.append(row);
      }
      const columns = validator.finish().map((c) => (images && c.role === 'image' ? { ...c, images: images.result() } : c));
      const { bytes, sha256 } = raw();
      const newDataset = { name: meta.name, task: meta.task, label, textField, format };
      const stored = await this.datasets.store(
        p.tenantId,
        newDataset,
        spool,
        { rows: validator.rows, columns, bytes, sha256 },
        p.quotas.max_storage_bytes,
      );
      if (!stored) throw storageRefusal(p);
      await this.usage.changed(p.tenantId);
      return datasetView(stored);
    } finally {
      await spool.discard();
    }
  }
}

function storageRefusal(p: TenantPrincipal, entry?: string): ApiError {
  const where = entry ? `${entry}: ` : '';
  return new ApiError(
    413,
    'quota_exceeded_error',
    'max_storage_bytes',
    `${where}This upload would take the tenant past its storage quota (max_storage_bytes = ${p.quotas.max_storage_bytes})`,
  );
}

/** Counts and hashes a streamed upload, refused past the storage quota or MAX_UPLOAD_BYTES. */
function uploadMeter(p: TenantPrincipal): ByteMeter {
  return new ByteMeter(Math.min(MAX_UPLOAD_BYTES, p.quotas.max_storage_bytes), () =>
    p.quotas.max_storage_bytes < MAX_UPLOAD_BYTES
      ? storageRefusal(p)
      : ApiError.invalid('body_too_large', `Uploads are limited to ${MAX_UPLOAD_BYTES} bytes`, undefined, 413),
  );
}
