import { APP_CONFIG, type AppConfig } from '@app/config';
import { AuditRepository, Database, ModelRegistry } from '@app/db';
import { type BackendInfo, type Explanation, MlError, type Prediction, type Row, type Scores } from '@app/ml';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ComputePool } from '../compute/pool.js';
import type { ComputeOps } from '../compute/protocol.js';
import { JobInputError } from '../jobs/job-reader.js';

/**
 * Rows per call to a child. A bigger request (an async job over a dataset, a sync request of
 * 10,000 rows) is cut into calls of this size so that other batches get the child in between.
 */
const CHUNK_ROWS = 1_024;

export interface InferenceOutput {
  predictions: Prediction[];
  explanations?: Explanation[];
  /** Compute time in the child (model loading included). */
  seconds: number;
}

/**
 * The compute children that serve predictions, apart from the training children so that a long
 * training never delays one. Each child keeps the versions it served recently loaded (an LRU of
 * WORKER_MODEL_CACHE_BYTES); a call names the version, and only a child that does not hold it is
 * sent the artifact, read from PostgreSQL once however many callers miss at the same moment.
 * Both the sync lane (InferenceLane) and async inference jobs (Runners) predict through here.
 */
@Injectable()
export class InferencePool implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('inference');
  private readonly pool: ComputePool;
  private readonly registry: ModelRegistry;
  private readonly reading = new Map<string, Promise<Buffer | null>>();
  private started: Promise<BackendInfo> | null = null;
  backend: BackendInfo | null = null;

  constructor(@Inject(APP_CONFIG) config: AppConfig, db: Database) {
    this.registry = new ModelRegistry(db, new AuditRepository(db));
    this.pool = new ComputePool({
      size: config.workerInferenceChildren,
      forcedBackend: config.tfBackend,
      cancelKillMs: config.workerCancelKillMs,
      modelCacheBytes: config.workerModelCacheBytes,
      onChild: (pid, backend) =>
        process.stdout.write(`${JSON.stringify({ event: 'worker.child', role: 'inference', pid, backend: backend.name })}\n`),
      onError: (m) => this.log.error(m),
    });
  }

  /**
   * Starts the children without holding up the worker's start: the job queues are taken at once
   * (a job that predicts waits here for the children), the predict queue once they are up.
   */
  onModuleInit(): void {
    this.started = this.pool.start().then((backend) => (this.backend = backend));
    this.started.catch((err: Error) => this.log.error(`inference children did not start: ${err.message}`));
  }

  /** Resolves once the inference children are up (their backend loaded). */
  ready(): Promise<BackendInfo> {
    if (!this.started) throw new Error('InferencePool used before it was started');
    return this.started;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.close();
  }

  pids(): number[] {
    return this.pool.pids();
  }

  /**
   * Predictions of a version for `inputs`, in order. A version without an artifact (deleted
   * meanwhile) is `JobInputError('version_not_found')`; bad inputs are libs/ml's MlError; a child
   * that dies mid-call is `ChildCrashed`. `signal` cancels (between chunks, or by killing the child).
   * `baseFeatures`: a head's base features of the inputs, from the feature cache (in input order).
   */
  async predict(
    tenantId: string,
    versionId: string,
    inputs: Row[],
    explain: boolean,
    signal?: AbortSignal,
    baseFeatures?: Float32Array[],
  ): Promise<InferenceOutput> {
    if (inputs.length <= CHUNK_ROWS) return this.predictChunk(tenantId, versionId, inputs, explain, signal, baseFeatures);
    const out: InferenceOutput = { predictions: [], ...(explain ? { explanations: [] } : {}), seconds: 0 };
    for (let start = 0; start < inputs.length; start += CHUNK_ROWS) {
      if (signal?.aborted) throw new MlError('canceled', 'canceled');
      const part = await this.predictChunk(
        tenantId,
        versionId,
        inputs.slice(start, start + CHUNK_ROWS),
        explain,
        signal,
        baseFeatures?.slice(start, start + CHUNK_ROWS),
      );
      out.predictions.push(...part.predictions);
      if (part.explanations) out.explanations!.push(...part.explanations);
      out.seconds += part.seconds;
    }
    return out;
  }

  /**
   * Loads an imported artifact in an inference child as serving would and predicts once
   * (libs/ml checkLoads). A model that cannot serve is MlError; a child that dies is ChildCrashed.
   */
  async check(artifact: Uint8Array, signal?: AbortSignal): Promise<{ seconds: number }> {
    await this.ready();
    return this.pool.run('check', { artifact }, { signal });
  }

  /** A foundation model on raw inputs, in an inference child (which keeps the model loaded). Bad input i: InputError(i). */
  async foundation(model: string, op: 'embed' | 'classify', inputs: string[] | Uint8Array[]): Promise<ComputeOps['foundation']['result']> {
    await this.ready();
    return this.pool.run('foundation', { model, op, inputs });
  }

  /**
   * A batch prediction's chunk (its dataset rows as NDJSON lines) scored by a version: the raw
   * scores (libs/ml Scores), in order. Errors as `predict`'s.
   */
  async score(tenantId: string, versionId: string, lines: string, signal?: AbortSignal): Promise<Scores & { seconds: number }> {
    await this.ready();
    return this.withArtifact(tenantId, versionId, (artifact) =>
      this.pool.run('score', { versionId, lines, ...(artifact ? { artifact } : {}) }, { signal }),
    );
  }

  private async predictChunk(
    tenantId: string,
    versionId: string,
    inputs: Row[],
    explain: boolean,
    signal?: AbortSignal,
    baseFeatures?: Float32Array[],
  ): Promise<InferenceOutput> {
    await this.ready();
    const args = { versionId, inputs, explain, ...(baseFeatures ? { baseFeatures } : {}) };
    return this.withArtifact(tenantId, versionId, (artifact) =>
      this.pool.run('infer', artifact ? { ...args, artifact } : args, { signal }),
    );
  }

  /** A call to a child that may not hold the version: asked without the artifact first, then with it if the child missed. */
  private async withArtifact<R extends { miss: boolean }>(
    tenantId: string,
    versionId: string,
    call: (artifact?: Uint8Array) => Promise<R>,
  ): Promise<Exclude<R, { miss: true }>> {
    const first = await call();
    if (!first.miss) return first as Exclude<R, { miss: true }>;
    const second = await call(new Uint8Array(await this.artifact(tenantId, versionId)));
    if (second.miss) throw new Error(`the inference child did not load version ${versionId} from its artifact`);
    return second as Exclude<R, { miss: true }>;
  }

  /** The version's artifact; concurrent misses of one version share one read. */
  private async artifact(tenantId: string, versionId: string): Promise<Buffer> {
    const key = `${tenantId}:${versionId}`;
    let read = this.reading.get(key);
    if (!read) {
      read = this.registry.artifact(tenantId, versionId);
      this.reading.set(key, read);
      void read.finally(() => this.reading.delete(key)).catch(() => undefined);
    }
    const bytes = await read;
    if (!bytes) throw new JobInputError('version_not_found', `Version ${versionId} no longer exists`);
    return bytes;
  }
}
