import { type Job, versionDataOf } from '@app/db';
import type { Hyperparameters } from '@app/ml';
import type { ComputePool } from '../../compute/pool.js';
import { JobInputError, type JobReader, type Outcome, type RunContext } from '../job-reader.js';

/** The training queue: a dataset (and a base version or foundation model) in, a new model version out, trained in a compute child. */
export class TrainingProcessor {
  constructor(
    private readonly reader: JobReader,
    private readonly pool: ComputePool,
  ) {}

  async run(job: Job, ctx: RunContext): Promise<Outcome> {
    await this.reader.model(job);
    const { spec, rows } = await this.reader.dataset(job, ctx.signal);
    let base: Buffer | undefined;
    if (job.baseVersion !== null) {
      const v = await this.reader.registry.version(job.tenantId, job.modelId, job.baseVersion);
      if (!v) throw new JobInputError('version_not_found', `Model ${job.modelId} has no version ${job.baseVersion} to fine-tune from`);
      base = await this.reader.artifactOf(job, v);
    }
    const maxParameters = await this.reader.maxParameters(job);
    const { base_model: baseModelId, ...hyperparameters } = (job.hyperparameters ?? {}) as Hyperparameters & { base_model?: string };
    // A base whose top layers train (trainable_base_layers) sees the raw images at every step: no features to cache.
    const unfrozen = Number((hyperparameters as { trainable_base_layers?: number }).trainable_base_layers ?? 0) > 0;
    const field = spec.imageField ?? spec.textField ?? 'text';
    const baseModel = !baseModelId
      ? undefined
      : unfrozen
        ? { ...(await this.reader.baseOf(baseModelId)), features: [] }
        : await this.reader.baseFeatures(job, baseModelId, field, rows, ctx.signal);
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
    const { version } = await this.reader.registry.createFromTraining(
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
}
