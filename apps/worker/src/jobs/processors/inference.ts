import type { Job } from '@app/db';
import type { Row } from '@app/ml';
import { inferenceResult } from '@app/queue';
import type { InferencePool } from '../../inference/inference-pool.js';
import type { BatchOutput, BatchPrediction } from './batch-prediction.js';
import { JobInputError, type JobReader, type Outcome, type RunContext } from '../job-reader.js';

/**
 * The inference queue: inline inputs or a dataset's rows predicted by the inference children (which keep models loaded),
 * stored in output pages; a job with `output` is a batch prediction into a file (BatchPrediction).
 */
export class InferenceProcessor {
  constructor(
    private readonly reader: JobReader,
    private readonly inferencePool: InferencePool,
    private readonly outputPageSize: number,
    private readonly batch: BatchPrediction,
  ) {}

  async run(job: Job, ctx: RunContext): Promise<Outcome> {
    if (job.output && job.datasetId) return this.batch.run(job, job.output as unknown as BatchOutput, ctx);
    const version = await this.reader.resolveVersion(job);
    let inputs: Row[];
    let baseFeatures: Float32Array[] | undefined;
    if (Array.isArray(job.inputs)) inputs = job.inputs as Row[];
    else if (job.datasetId) {
      inputs = (await this.reader.dataset(job, ctx.signal)).rows;
      baseFeatures = await this.reader.cachedBaseFeatures(job, version, inputs, ctx.signal);
    } else throw new JobInputError('invalid_input', 'An inference job needs `inputs` or a `dataset`');
    // The version's artifact is read only if the inference child does not hold it loaded.
    const out = await this.inferencePool.predict(job.tenantId, version.id, inputs, job.explain, ctx.signal, baseFeatures);
    const predictions = out.predictions.map((p) => ({ ...p, version: version.number }));
    // Past one page the first stays in `result`; every page (0 included) is stored for GET /v1/jobs/{id}/output.
    const { result, pages } = inferenceResult(version.number, predictions, out.explanations, this.outputPageSize);
    return { version: version.number, result, ...(pages ? { pages } : {}) };
  }
}
