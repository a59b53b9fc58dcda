import type { FileRepository, Job, ModelVersion, OutputFormat } from '@app/db';
import type { JobLifecycle } from '@app/jobs';
import { MlError, type Prediction, type Row } from '@app/ml';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { InferencePool } from '../../inference/inference-pool.js';
import type { JobReader, Outcome, RunContext } from '../job-reader.js';
import { encodeRows, type OutputLayout } from './output-format.js';

/** Rows scored and committed at a time, by the input they read: a chunk is the unit of a checkpoint and of a resume. */
const CHUNK_ROWS = { tabular: 4_096, text: 256, image: 32 } as const;
/** At most one job.progress event this often (every chunk still updates the job's progress). */
const PROGRESS_EVENT_MS = 1_000;

export interface BatchOutput {
  format: OutputFormat;
  include_inputs: boolean;
}

/**
 * A batch prediction (an inference job with `output`): the dataset's rows in chunks through the
 * same inference children as sync predictions, each chunk's lines committed to the job's file
 * together with its checkpoint (the job's progress) before it counts. A later attempt (the worker
 * was killed, or a retry) finds the file and goes on after its last committed chunk, with the
 * version the first attempt picked: every row is in the file once, in dataset order, and no row
 * before the checkpoint is scored again. The next chunk is scored while the last one commits.
 * A job that fails or is canceled keeps the rows it committed as a finished file (ctx.partial).
 */
export class BatchPrediction {
  constructor(
    private readonly reader: JobReader,
    private readonly files: FileRepository,
    private readonly inferencePool: InferencePool,
    private readonly lifecycle: JobLifecycle,
    private readonly retentionSeconds: number,
    /** Rows per chunk; 0: CHUNK_ROWS by the version's input. */
    private readonly chunkRows = 0,
  ) {}

  async run(job: Job, output: BatchOutput, ctx: RunContext): Promise<Outcome> {
    const dataset = await this.reader.datasetRow(job);
    const existing = await this.files.ofJob(job.id);
    // A resumed job scores with the version its first attempt picked (an alias may have moved, a split may pick another).
    const version = await this.reader.resolveVersion(existing?.version != null ? { ...job, version: existing.version } : job);
    const file = existing ?? (await this.files.forJob(job, output.format, output.include_inputs, version.number));
    let at = await this.files.committed(file.id);
    const resumedFrom = at.rows;
    const hash = resumedFrom > 0 ? await this.files.hashOf(file.id) : createHash('sha256');
    const total = dataset.rows;
    const layout: OutputLayout = {
      format: output.format,
      inputs: output.include_inputs ? dataset.columns : null,
      labels: Array.isArray(version.labels) ? (version.labels as string[]) : null,
    };
    const finished = (rows: number) => ({
      output_file_id: file.id,
      rows,
      rows_total: total,
      format: output.format,
      version: version.number,
      ...(resumedFrom > 0 ? { resumed_from_row: resumedFrom } : {}),
    });

    let pending: Promise<void> = Promise.resolve();
    ctx.partial = async () => {
      await pending.catch(() => undefined);
      const kept = await this.files.committed(file.id);
      await this.files.finish(null, file.id, (await this.files.hashOf(file.id)).digest('hex'), this.retentionSeconds);
      return finished(kept.rows);
    };
    if (resumedFrom > 0) {
      const progress = rowsProgress(resumedFrom, total, null);
      await this.lifecycle.progress(job.id, progress, { ...progress, resumed_from_row: resumedFrom });
    }

    const t0 = performance.now();
    let lastEvent = 0;
    const chunkRows = this.chunkRows || CHUNK_ROWS[inputKind(version)];
    const commit = (rows: Row[], predictions: Array<Prediction & { version: number }>) => {
      const data = encodeRows(layout, at.rows, rows, predictions, at.rows === 0);
      const before = at;
      at = { rows: at.rows + rows.length, bytes: at.bytes + data.length, chunks: at.chunks + 1 };
      hash.update(data);
      const now = performance.now();
      const eta = ((now - t0) / 1000 / (at.rows - resumedFrom)) * (total - at.rows);
      const progress = rowsProgress(at.rows, total, eta);
      const event = now - lastEvent >= PROGRESS_EVENT_MS || at.rows >= total ? progress : null;
      if (event) lastEvent = now;
      return this.lifecycle
        .checkpoint(job.id, progress, event, (client) =>
          this.files.append(client, file, before, rows.length, data, ctx.quotas.max_storage_bytes),
        )
        .then((r) => {
          if (!r) throw new MlError('canceled', 'the job is no longer running here');
          if (r.cancelRequested) throw new MlError('canceled', 'canceled on request');
        });
    };

    // Rows this attempt sent to predict, counted apart from the file: a resume shows it scored only the rest.
    let scored = 0;
    let chunk: Row[] = [];
    const flush = async () => {
      const rows = chunk;
      chunk = [];
      const out = await this.inferencePool.predict(job.tenantId, version.id, rows, false, ctx.signal);
      scored += rows.length;
      const predictions = out.predictions.map((p) => ({ ...p, version: version.number }));
      // One chunk commits while the next is scored; a failed commit stops the job at the next chunk.
      await pending;
      pending = commit(rows, predictions);
      // Awaited by the next chunk (or the end); until then its failure must not count as unhandled.
      pending.catch(() => undefined);
    };
    for await (const row of this.reader.rowsFrom(job, resumedFrom, ctx.signal)) {
      chunk.push(row);
      if (chunk.length >= chunkRows) await flush();
    }
    if (chunk.length > 0) await flush();
    await pending;
    if (at.rows !== total) throw new Error(`the file has ${at.rows} rows of the dataset's ${total}`);
    const sha256 = hash.digest('hex');
    ctx.partial = undefined;
    return {
      version: version.number,
      result: { ...finished(at.rows), rows_scored: scored, bytes: at.bytes, sha256 },
      progress: rowsProgress(total, total, 0),
      also: (client) => this.files.finish(client, file.id, sha256, this.retentionSeconds),
    };
  }
}

function rowsProgress(done: number, total: number, eta: number | null) {
  return {
    percent: total === 0 ? 100 : Math.floor((1000 * done) / total) / 10,
    rows_done: done,
    rows_total: total,
    eta_seconds: eta === null || !Number.isFinite(eta) ? null : Math.round(eta * 10) / 10,
  };
}

function inputKind(version: ModelVersion): keyof typeof CHUNK_ROWS {
  const schema = version.inputSchema as { text_field?: string; image_field?: string } | null;
  return schema?.image_field ? 'image' : schema?.text_field ? 'text' : 'tabular';
}
