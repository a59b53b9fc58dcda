import { effectiveQuotas, pickByWeight, type Quotas } from '@app/common';
import type pg from 'pg';
import {
  AuditRepository,
  camelRow,
  type Database,
  type Dataset,
  datasetColumns,
  DatasetRepository,
  FeatureCacheRepository,
  fromDbTask,
  type Job,
  ModelRegistry,
  type ModelVersion,
} from '@app/db';
import { type EpochProgress, foundationModel, foundationWeights, MlError, type Row } from '@app/ml';
import type { ComputePool } from '../compute/pool.js';

/**
 * Rows per call to the compute child while features are computed: a cancel stops between calls (256 texts or 32
 * images are a few seconds of wasm).
 */
const FEATURE_SLICE_ROWS = { text: 256, image: 32 } as const;
/**
 * libs/ml's feature layouts, part of the feature cache's key so that a new layout never reads old rows: text
 * (baseFeatures: chunks of 128 tokens, up to 8 spread over the document, mean and max), images (decoded, resized
 * to 224×224 bilinear, scaled to [0, 1], MobileNetV2's flatten_1).
 */
const FEATURES_LAYOUT = { text: 'text-chunks-128x8-mean-max-v1', image: 'image-224-bilinear-flatten1-v1' } as const;

/** A job that cannot succeed however often it runs (a missing dataset, model, version or alias): failed at once. */
export class JobInputError extends Error {
  override readonly name = 'JobInputError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The job left `running` under this attempt (the reconciler took it back as lost, or it ended
 * elsewhere): the attempt stops and writes nothing more, not even its end.
 */
export class JobMovedOn extends Error {
  override readonly name = 'JobMovedOn';
}

export interface RunContext {
  signal: AbortSignal;
  onEpoch: (p: EpochProgress) => void;
  /** The quotas the job runs under (a batch prediction's file counts towards max_storage_bytes). */
  quotas: Quotas;
  /**
   * Set by a processor that keeps what it finished when the job ends otherwise than succeeded
   * (failed for good, canceled): called then, it answers what goes into the job's `result`.
   */
  partial?: () => Promise<Record<string, unknown> | null>;
}

/** What a job produced: the row's `version` and `result`, and output pages past the first (inference). */
export interface Outcome {
  version: number | null;
  result: Record<string, unknown>;
  pages?: object[];
  /** Its last progress (a batch prediction's rows). */
  progress?: object;
  /** More writes in the transaction that makes it succeeded (a batch prediction's file made readable). */
  also?: (client: pg.PoolClient) => Promise<void>;
}

/**
 * What a job names, read from PostgreSQL for the processors: its model, dataset rows, version
 * (by number, alias or traffic split), artifact, the tenant's limits, and a foundation model's
 * features of the rows (from the feature cache, or computed in the job's compute child).
 */
export class JobReader {
  readonly registry: ModelRegistry;
  private readonly datasets: DatasetRepository;
  private readonly features: FeatureCacheRepository;

  constructor(
    private readonly db: Database,
    private readonly pool: ComputePool,
    featureCacheBytes: number,
  ) {
    this.registry = new ModelRegistry(db, new AuditRepository(db));
    this.datasets = new DatasetRepository(db);
    this.features = new FeatureCacheRepository(db, featureCacheBytes);
  }

  /** The tenant's max_model_parameters (a training job checks its model against it). */
  async maxParameters(job: Job): Promise<number> {
    const { rows } = await this.db.pool.query<{ plan: string; quotas: Record<string, unknown> }>(
      'SELECT plan, quotas FROM tenants WHERE id = $1',
      [job.tenantId],
    );
    if (!rows[0]) throw new JobInputError('tenant_not_found', 'The tenant no longer exists');
    return effectiveQuotas(rows[0].plan, rows[0].quotas).max_model_parameters;
  }

  /**
   * The features of every row from the foundation model, from the feature cache when this dataset
   * already went through the same base with the same layout, else computed in the job's compute
   * child (in slices, so that a cancel or the time limit stops it) and stored for the next job.
   */
  async baseOf(baseId: string): Promise<{ id: string; sha256: string; input: 'text' | 'image' }> {
    const model = foundationModel(baseId);
    if (!model) throw new JobInputError('base_model_not_found', `No foundation model '${baseId}'`);
    return { id: baseId, sha256: (await foundationWeights(model)).sha256, input: model.input.type };
  }

  async baseFeatures(job: Job, baseId: string, field: string, rows: Row[], signal: AbortSignal) {
    const { sha256, input } = await this.baseOf(baseId);
    // The column is part of the key: a version may read another text column of the dataset than its training did.
    const key = { baseId, baseSha256: sha256, preprocessing: `${FEATURES_LAYOUT[input]}:${field}` };
    const cached = await this.features.get(job.datasetId!, key);
    if (cached) return { id: baseId, sha256, features: cached };
    const features: Float32Array[] = [];
    const slice = FEATURE_SLICE_ROWS[input];
    for (let start = 0; start < rows.length; start += slice) {
      const part = rows.slice(start, start + slice);
      // images are stored as base64 of their file; the child decodes the bytes
      const inputs =
        input === 'image' ? part.map((r) => Buffer.from(String(r[field] ?? ''), 'base64')) : part.map((r) => String(r[field] ?? ''));
      const out = await this.pool.run('features', { model: baseId, inputs }, { signal });
      features.push(...out.features);
    }
    await this.features.put(job.tenantId, job.datasetId!, key, features);
    return { id: baseId, sha256, features };
  }

  /**
   * A transfer-learned version's base features of a dataset's rows, from the feature cache (computed and stored on
   * the first job that needs them); undefined for a version trained from scratch.
   */
  async cachedBaseFeatures(job: Job, version: ModelVersion, rows: Row[], signal: AbortSignal): Promise<Float32Array[] | undefined> {
    const schema = version.inputSchema as { base_model?: { id: string }; text_field?: string; image_field?: string } | null;
    const field = schema?.image_field ?? schema?.text_field;
    // A head with unfrozen base layers reads the frozen bottom's activations, not the base's features.
    const unfrozen = Number((version.hyperparameters as { trainable_base_layers?: number } | null)?.trainable_base_layers ?? 0) > 0;
    if (!schema?.base_model || !field || unfrozen) return undefined;
    // Rows without the column fail in the child with a message naming them; the cache holds only complete sets.
    if (!rows.every((r) => typeof r[field] === 'string')) return undefined;
    return (await this.baseFeatures(job, schema.base_model.id, field, rows, signal)).features;
  }

  async model(job: Job) {
    const model = await this.registry.find(job.tenantId, job.modelId);
    if (!model) throw new JobInputError('model_not_found', `Model ${job.modelId} does not exist`);
    return model;
  }

  /** The job's dataset's row; JobInputError without one. */
  private async datasetOf(job: Job): Promise<Dataset> {
    if (!job.datasetId) throw new JobInputError('dataset_required', `A ${job.type} job needs a dataset`);
    const ds = await this.datasets.get(job.tenantId, job.datasetId);
    if (!ds) throw new JobInputError('dataset_not_found', `Dataset ${job.datasetId} does not exist`);
    return ds;
  }

  async dataset(
    job: Job,
    signal: AbortSignal,
  ): Promise<{ spec: { task: ReturnType<typeof fromDbTask>; label: string; textField?: string; imageField?: string }; rows: Row[] }> {
    const ds = await this.datasetOf(job);
    const rows: Row[] = [];
    // A large dataset takes a while to read: a cancellation or the time limit stops that too.
    for await (const row of this.datasets.rows(job.tenantId, ds.id)) {
      if (signal.aborted) throw new MlError('canceled', 'stopped while reading the dataset');
      rows.push(row);
    }
    const task = fromDbTask(ds.task);
    // An image dataset's images are always in its `image` column (base64 of each file).
    return {
      spec: {
        task,
        label: ds.label,
        ...(ds.textField ? { textField: ds.textField } : {}),
        ...(task === 'image-classification' ? { imageField: 'image' } : {}),
      },
      rows,
    };
  }

  /** The job's dataset as a batch prediction reads it: its row count and columns. */
  async datasetRow(job: Job): Promise<{ rows: number; columns: string[] }> {
    const ds = await this.datasetOf(job);
    return { rows: ds.rows, columns: datasetColumns(ds) };
  }

  /** The job's dataset's rows as stored (NDJSON lines, a stored chunk's at a time) from row `from`; a cancel or the time limit stops the read. */
  async *linesFrom(job: Job, from: number, signal: AbortSignal): AsyncGenerator<string[]> {
    for await (const lines of this.datasets.lines(job.tenantId, job.datasetId!, from)) {
      if (signal.aborted) throw new MlError('canceled', 'stopped while reading the dataset');
      yield lines;
    }
  }

  async artifactOf(job: Job, version: ModelVersion): Promise<Buffer> {
    const bytes = await this.registry.artifact(job.tenantId, version.id);
    if (!bytes) throw new JobInputError('version_not_found', `Version ${version.number} has no artifact`);
    return bytes;
  }

  /** The version that answers: `version`, else `alias` (default `latest`), a traffic split picked by weight. */
  async resolveVersion(job: Job): Promise<ModelVersion> {
    let number: number | null = job.version;
    if (number === null && (job.alias ?? 'latest') !== 'latest') {
      const row = await this.db.prisma.modelAlias.findUnique({ where: { modelId_name: { modelId: job.modelId, name: job.alias! } } });
      if (!row) throw new JobInputError('alias_not_found', `Model ${job.modelId} has no alias '${job.alias}'`);
      number = pickByWeight(row.versions as Array<{ version: number; weight: number }>);
    }
    // One plain-pg read (the newest version when no number is named): a tiny inference job's only read before it predicts.
    const { rows } = await this.db.pool.query(
      'SELECT * FROM model_versions WHERE tenant_id = $1 AND model_id = $2 AND ($3::int IS NULL OR number = $3) ORDER BY number DESC LIMIT 1',
      [job.tenantId, job.modelId, number],
    );
    const v = camelRow<ModelVersion>(rows[0]);
    if (v) return v;
    // No version: say whether the model itself is gone.
    await this.model(job);
    throw new JobInputError(
      'version_not_found',
      number === null ? `Model ${job.modelId} has no version yet` : `Model ${job.modelId} has no version ${number}`,
    );
  }
}
