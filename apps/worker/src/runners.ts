import { effectiveQuotas, pickByWeight } from '@app/common';
import {
  AuditRepository,
  type Database,
  DatasetRepository,
  FeatureCacheRepository,
  fromDbTask,
  type Job,
  ModelRegistry,
  type ModelVersion,
  versionDataOf,
} from '@app/db';
import { type EpochProgress, foundationModel, foundationWeights, type Hyperparameters, MlError, type Row } from '@app/ml';
import { inferenceResult } from '@app/queue';
import type { ComputePool } from './compute/pool.js';
import type { InferencePool } from './inference/inference-pool.js';

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

export interface RunContext {
  signal: AbortSignal;
  onEpoch: (p: EpochProgress) => void;
}

/** What a job produced: the row's `version` and `result`, and output pages past the first (inference). */
export interface Outcome {
  version: number | null;
  result: Record<string, unknown>;
  pages?: object[];
}

/**
 * The work of each job type, in the worker's parent process: read what the job names from
 * PostgreSQL, hand the compute to a child process (training and evaluation to the pool's
 * children, inference to the inference children, which keep models loaded), shape the result.
 * Nothing here runs TF.js.
 */
export class Runners {
  private readonly registry: ModelRegistry;
  private readonly datasets: DatasetRepository;
  private readonly features: FeatureCacheRepository;

  constructor(
    private readonly db: Database,
    private readonly pool: ComputePool,
    private readonly inferencePool: InferencePool,
    private readonly outputPageSize: number,
    featureCacheBytes: number,
  ) {
    this.registry = new ModelRegistry(db, new AuditRepository(db));
    this.datasets = new DatasetRepository(db);
    this.features = new FeatureCacheRepository(db, featureCacheBytes);
  }

  run(job: Job, ctx: RunContext): Promise<Outcome> {
    // Aborted before it began (a retry picked up past its deadline): nothing to read or compute.
    if (ctx.signal.aborted) return Promise.reject(new MlError('canceled', 'stopped before it began'));
    switch (job.type) {
      case 'training':
        return this.training(job, ctx);
      case 'evaluation':
        return this.evaluation(job, ctx);
      case 'inference':
        return this.inference(job, ctx);
    }
  }

  private async training(job: Job, ctx: RunContext): Promise<Outcome> {
    await this.model(job);
    const { spec, rows } = await this.dataset(job, ctx.signal);
    let base: Buffer | undefined;
    if (job.baseVersion !== null) {
      const v = await this.registry.version(job.tenantId, job.modelId, job.baseVersion);
      if (!v) throw new JobInputError('version_not_found', `Model ${job.modelId} has no version ${job.baseVersion} to fine-tune from`);
      base = await this.artifactOf(job, v);
    }
    const tenant = await this.db.prisma.tenant.findUnique({ where: { id: job.tenantId } });
    if (!tenant) throw new JobInputError('tenant_not_found', 'The tenant no longer exists');
    const maxParameters = effectiveQuotas(tenant.plan, tenant.quotas as Record<string, unknown>).max_model_parameters;
    const { base_model: baseModelId, ...hyperparameters } = (job.hyperparameters ?? {}) as Hyperparameters & { base_model?: string };
    // A base whose top layers train (trainable_base_layers) sees the raw images at every step: no features to cache.
    const unfrozen = Number((hyperparameters as { trainable_base_layers?: number }).trainable_base_layers ?? 0) > 0;
    const field = spec.imageField ?? spec.textField ?? 'text';
    const baseModel = !baseModelId
      ? undefined
      : unfrozen
        ? { ...(await this.baseOf(baseModelId)), features: [] }
        : await this.baseFeatures(job, baseModelId, field, rows, ctx.signal);
    const trained = await this.pool.run(
      'train',
      {
        spec,
        rows,
        hyperparameters: hyperparameters as Hyperparameters,
        architecture: job.architecture ?? undefined,
        base: base ? new Uint8Array(base) : undefined,
        baseModel,
        maxParameters,
      },
      { signal: ctx.signal, onEpoch: ctx.onEpoch },
    );
    const { version } = await this.registry.createFromTraining(
      job.tenantId,
      job.modelId,
      job.id,
      versionDataOf(trained, { datasetId: job.datasetId, baseVersion: job.baseVersion }),
    );
    return {
      version: version.number,
      result: {
        version: version.number,
        version_id: version.id,
        metrics: trained.metrics,
        metrics_split: trained.metrics_split,
        best_epoch: trained.best_epoch,
        stopped_early: trained.stopped_early,
        parameters: trained.parameters,
        hyperparameters: trained.hyperparameters,
        train_samples: trained.train_samples,
        validation_samples: trained.validation_samples,
        backend: trained.backend,
        sha256: trained.sha256,
      },
    };
  }

  /**
   * The features of every row from the foundation model, from the feature cache when this dataset
   * already went through the same base with the same layout, else computed in the job's compute
   * child (in slices, so that a cancel or the time limit stops it) and stored for the next job.
   */
  private async baseOf(baseId: string): Promise<{ id: string; sha256: string; input: 'text' | 'image' }> {
    const model = foundationModel(baseId);
    if (!model) throw new JobInputError('base_model_not_found', `No foundation model '${baseId}'`);
    return { id: baseId, sha256: (await foundationWeights(model)).sha256, input: model.input.type };
  }

  private async baseFeatures(job: Job, baseId: string, field: string, rows: Row[], signal: AbortSignal) {
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

  private async evaluation(job: Job, ctx: RunContext): Promise<Outcome> {
    await this.model(job);
    const version = await this.resolveVersion(job);
    const artifact = await this.artifactOf(job, version);
    const { rows } = await this.dataset(job, ctx.signal);
    const baseFeatures = await this.cachedBaseFeatures(job, version, rows, ctx.signal);
    const metrics = await this.pool.run(
      'evaluate',
      { artifact: new Uint8Array(artifact), rows, ...(baseFeatures ? { baseFeatures } : {}) },
      { signal: ctx.signal },
    );
    return { version: version.number, result: { version: version.number, metrics } };
  }

  private async inference(job: Job, ctx: RunContext): Promise<Outcome> {
    await this.model(job);
    const version = await this.resolveVersion(job);
    let inputs: Row[];
    let baseFeatures: Float32Array[] | undefined;
    if (Array.isArray(job.inputs)) inputs = job.inputs as Row[];
    else if (job.datasetId) {
      inputs = (await this.dataset(job, ctx.signal)).rows;
      baseFeatures = await this.cachedBaseFeatures(job, version, inputs, ctx.signal);
    } else throw new JobInputError('invalid_input', 'An inference job needs `inputs` or a `dataset`');
    // The version's artifact is read only if the inference child does not hold it loaded.
    const out = await this.inferencePool.predict(job.tenantId, version.id, inputs, job.explain, ctx.signal, baseFeatures);
    const predictions = out.predictions.map((p) => ({ ...p, version: version.number }));
    // Past one page the first stays in `result`; every page (0 included) is stored for GET /v1/jobs/{id}/output.
    const { result, pages } = inferenceResult(version.number, predictions, out.explanations, this.outputPageSize);
    return { version: version.number, result, ...(pages ? { pages } : {}) };
  }

  /**
   * A transfer-learned version's base features of a dataset's rows, from the feature cache (computed and stored on
   * the first job that needs them); undefined for a version trained from scratch.
   */
  private async cachedBaseFeatures(job: Job, version: ModelVersion, rows: Row[], signal: AbortSignal): Promise<Float32Array[] | undefined> {
    const schema = version.inputSchema as { base_model?: { id: string }; text_field?: string; image_field?: string } | null;
    const field = schema?.image_field ?? schema?.text_field;
    // A head with unfrozen base layers reads the frozen bottom's activations, not the base's features.
    const unfrozen = Number((version.hyperparameters as { trainable_base_layers?: number } | null)?.trainable_base_layers ?? 0) > 0;
    if (!schema?.base_model || !field || unfrozen) return undefined;
    // Rows without the column fail in the child with a message naming them; the cache holds only complete sets.
    if (!rows.every((r) => typeof r[field] === 'string')) return undefined;
    return (await this.baseFeatures(job, schema.base_model.id, field, rows, signal)).features;
  }

  private async model(job: Job) {
    const model = await this.registry.find(job.tenantId, job.modelId);
    if (!model) throw new JobInputError('model_not_found', `Model ${job.modelId} does not exist`);
    return model;
  }

  private async dataset(
    job: Job,
    signal: AbortSignal,
  ): Promise<{ spec: { task: ReturnType<typeof fromDbTask>; label: string; textField?: string; imageField?: string }; rows: Row[] }> {
    if (!job.datasetId) throw new JobInputError('dataset_required', `A ${job.type} job needs a dataset`);
    const ds = await this.datasets.get(job.tenantId, job.datasetId);
    if (!ds) throw new JobInputError('dataset_not_found', `Dataset ${job.datasetId} does not exist`);
    const rows: Row[] = [];
    // A large dataset takes a while to read: a cancellation or the time limit stops that too.
    for await (const row of this.datasets.rows(job.tenantId, job.datasetId)) {
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

  private async artifactOf(job: Job, version: ModelVersion): Promise<Buffer> {
    const bytes = await this.registry.artifact(job.tenantId, version.id);
    if (!bytes) throw new JobInputError('version_not_found', `Version ${version.number} has no artifact`);
    return bytes;
  }

  /** The version that answers: `version`, else `alias` (default `latest`), a traffic split picked by weight. */
  private async resolveVersion(job: Job): Promise<ModelVersion> {
    let number: number | null = job.version;
    if (number === null) {
      const alias = job.alias ?? 'latest';
      if (alias === 'latest') {
        const newest = await this.db.prisma.modelVersion.findFirst({
          where: { tenantId: job.tenantId, modelId: job.modelId },
          orderBy: { number: 'desc' },
        });
        if (!newest) throw new JobInputError('version_not_found', `Model ${job.modelId} has no version yet`);
        return newest;
      }
      const row = await this.db.prisma.modelAlias.findUnique({ where: { modelId_name: { modelId: job.modelId, name: alias } } });
      if (!row) throw new JobInputError('alias_not_found', `Model ${job.modelId} has no alias '${alias}'`);
      number = pickByWeight(row.versions as Array<{ version: number; weight: number }>);
    }
    const v = await this.registry.version(job.tenantId, job.modelId, number);
    if (!v) throw new JobInputError('version_not_found', `Model ${job.modelId} has no version ${number}`);
    return v;
  }
}
