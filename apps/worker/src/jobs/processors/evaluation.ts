import type { Job } from '@app/db';
import type { ComputePool } from '../../compute/pool.js';
import type { JobReader, Outcome, RunContext } from '../job-reader.js';

/** The evaluation queue: a version scored on a dataset, in a compute child. */
export class EvaluationProcessor {
  constructor(
    private readonly reader: JobReader,
    private readonly pool: ComputePool,
  ) {}

  async run(job: Job, ctx: RunContext): Promise<Outcome> {
    await this.reader.model(job);
    const version = await this.reader.resolveVersion(job);
    const artifact = await this.reader.artifactOf(job, version);
    const { rows } = await this.reader.dataset(job, ctx.signal);
    const baseFeatures = await this.reader.cachedBaseFeatures(job, version, rows, ctx.signal);
    const metrics = await this.pool.run(
      'evaluate',
      { artifact: new Uint8Array(artifact), rows, ...(baseFeatures ? { baseFeatures } : {}) },
      { signal: ctx.signal },
    );
    return { version: version.number, result: { version: version.number, metrics } };
  }
}
