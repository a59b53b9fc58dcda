import type { FileRepository, Job, ModelVersion, OutputFormat } from '@app/db';
import type { JobLifecycle } from '@app/jobs';
import { MlError, type Scores } from '@app/ml';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { InferencePool } from '../../inference/inference-pool.js';
import { JobMovedOn, type JobReader, type Outcome, type RunContext } from '../job-reader.js';
import { encodeChunk, type OutputLayout } from './output-format.js';

/** Rows scored and committed at a time, by the input they read: a chunk is the unit of a checkpoint and of a resume. */
const CHUNK_ROWS = { tabular: 4_096, text: 256, image: 32 } as const;
/** Rows formatted between turns of the event loop. */
const ENCODE_SLICE = 512;
/** Chunks sent to be scored before the oldest is committed. */
const PIPELINE = 3;
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
    // Created, or found and opened for writing again (an admin retry of a failed job goes on after the rows it kept).
    const file = await this.files.forJob(job, output.format, output.include_inputs, version.number);
    let at = await this.files.committed(file.id);
    const resumedFrom = at.rows;
    const hash = resumedFrom > 0 ? await this.files.hashOf(file.id) : createHash('sha256');
    const total = dataset.rows;
    const layout: OutputLayout = {
      format: output.format,
      inputs: output.include_inputs ? dataset.columns : null,
      labels: Array.isArray(version.labels) ? (version.labels as string[]) : null,
      version: version.number,
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
      await this.files.finishAsIs(file.id, this.retentionSeconds);
      return finished(kept.rows);
    };
    if (resumedFrom > 0) {
      const progress = rowsProgress(resumedFrom, total, null);
      await this.lifecycle.progress(job.id, progress, { ...progress, resumed_from_row: resumedFrom });
    }

    const t0 = performance.now();
    let lastEvent = 0;
    const chunkRows = this.chunkRows || CHUNK_ROWS[inputKind(version)];
    // Encoded as soon as its scores are in (while the previous chunk may still be committing), committed after it.
    const commit = (lines: string[], data: Buffer) => {
      const before = at;
      at = { rows: at.rows + lines.length, bytes: at.bytes + data.length, chunks: at.chunks + 1 };
      hash.update(data);
      const now = performance.now();
      const eta = ((now - t0) / 1000 / (at.rows - resumedFrom)) * (total - at.rows);
      const progress = rowsProgress(at.rows, total, eta);
      const event = now - lastEvent >= PROGRESS_EVENT_MS || at.rows >= total ? progress : null;
      if (event) lastEvent = now;
      return this.lifecycle
        .checkpoint(job.id, progress, event, (client) =>
          this.files.append(client, file, before, lines.length, data, ctx.quotas.max_storage_bytes),
        )
        .then((r) => {
          if (!r) throw new JobMovedOn(`job ${job.id} is no longer running`);
          if (r.cancelRequested) throw new MlError('canceled', 'canceled on request');
        });
    };

    // Chunks are scored PIPELINE ahead (the inference child parses and scores the next while this
    // process formats the last), and committed strictly in order, one after the other.
    const inflight: Array<{ lines: string[]; scores: Promise<Scores> }> = [];
    // Rows this attempt sent to be scored, counted apart from the file: a resume shows it scored only the rest.
    let scored = 0;
    const send = (lines: string[]) => {
      const scores = this.inferencePool.score(job.tenantId, version.id, lines.join('\n'), ctx.signal);
      // Awaited in order below; until then a failure must not count as unhandled.
      scores.catch(() => undefined);
      inflight.push({ lines, scores });
    };
    let encodedRows = at.rows;
    const drain = async () => {
      const next = inflight.shift()!;
      const scores = await next.scores;
      scored += next.lines.length;
      const data = await encodeYielding(layout, encodedRows, next.lines, scores, encodedRows === 0);
      encodedRows += next.lines.length;
      await pending;
      pending = commit(next.lines, data);
      pending.catch(() => undefined);
    };
    let chunk: string[] = [];
    for await (const lines of this.reader.linesFrom(job, resumedFrom, ctx.signal)) {
      for (let i = 0; i < lines.length; ) {
        const take = Math.min(chunkRows - chunk.length, lines.length - i);
        for (let j = 0; j < take; j++) chunk.push(lines[i + j]);
        i += take;
        if (chunk.length < chunkRows) break;
        send(chunk);
        chunk = [];
        if (inflight.length >= PIPELINE) await drain();
      }
    }
    if (chunk.length > 0) send(chunk);
    while (inflight.length > 0) await drain();
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

/**
 * encodeChunk a slice of ENCODE_SLICE rows at a time, letting the event loop turn in between: the
 * inference child's answer for the next chunk is taken (and the chunk after sent) within a slice's
 * time instead of waiting for the whole chunk to be formatted, so the child is never left idle.
 */
async function encodeYielding(
  layout: OutputLayout,
  firstRow: number,
  lines: string[],
  scores: Scores,
  withHeader: boolean,
): Promise<Buffer> {
  const width = scores.labels?.length ?? 1;
  const parts: Buffer[] = [];
  for (let start = 0; start < lines.length; start += ENCODE_SLICE) {
    const end = Math.min(lines.length, start + ENCODE_SLICE);
    const slice: Scores = {
      labels: scores.labels,
      values: scores.values.subarray(start * width, end * width),
      predicted: scores.predicted?.subarray(start, end) ?? null,
    };
    parts.push(encodeChunk(layout, firstRow + start, lines.slice(start, end), slice, withHeader && start === 0));
    if (end < lines.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
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
