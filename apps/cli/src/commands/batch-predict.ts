import type { Job } from '@app/client';
import { extname } from 'node:path';
import { type Context, defined, UsageError } from '../context.js';
import { checkWritable, saveFile } from '../download.js';
import { formatBytes } from '../transfer-bar.js';
import { watchJob } from '../watch.js';
import { JobEndedBadly } from './outcome.js';

const FORMATS = ['csv', 'ndjson'] as const;
type Format = (typeof FORMATS)[number];

export interface BatchPredictOptions {
  model: string;
  dataset: string;
  out?: string;
  format?: string;
  includeInputs?: boolean;
  version?: number;
  alias?: string;
}

/** A batch prediction's `result` (kept too by a job that failed or was canceled part-way). */
interface BatchResult {
  output_file_id?: string;
  rows?: number;
  rows_total?: number;
  version?: number;
}

/**
 * `predict --model M --dataset ds_… --out FILE`: a batch prediction job over the dataset's rows,
 * followed (a bar of rows on a terminal, a line per progress event elsewhere, nothing under
 * --json; Ctrl-C offers to cancel it), then its output file streamed to FILE. A job that ends
 * otherwise names its error and the partial file it kept.
 */
export async function predictDataset(ctx: Context, opts: BatchPredictOptions): Promise<void> {
  if (!opts.out) throw new UsageError('--dataset needs --out FILE, where the predictions are written (.csv: CSV, else NDJSON)');
  const out = opts.out;
  const format = formatOf(opts.format, out);
  await checkWritable(out);
  const submitted = await ctx.client.call(
    ctx.client.api.POST('/v1/jobs', {
      body: {
        type: 'inference',
        model: opts.model,
        dataset: opts.dataset,
        output: { format, include_inputs: Boolean(opts.includeInputs) },
        ...defined({ version: opts.version, alias: opts.alias }),
      },
    }),
  );
  let job: Job;
  if (ctx.json) job = await ctx.client.jobs.wait(submitted.id);
  else {
    const watched = await watchJob(ctx, submitted);
    if (watched.detached) {
      process.stderr.write(`once it succeeds, its result names the file (output_file_id): aiaas files download <file id> --out ${out}\n`);
      process.exitCode = 130;
      return;
    }
    job = watched.job;
    // A cancel asked for after the job had already succeeded changes nothing: its file is downloaded.
    if (watched.canceledByUser && job.status !== 'succeeded') {
      ctx.out.line(`${job.id} canceled`, ...partialNote(job, out));
      process.exitCode = 130;
      return;
    }
  }
  const result = (job.result ?? {}) as BatchResult;
  if (job.status !== 'succeeded' || !result.output_file_id) throw new JobEndedBadly(job, partialNote(job, out));
  const file = await ctx.client.files.get(result.output_file_id);
  await saveFile(ctx, file, out);
  ctx.out.result(
    { job, file, path: out },
    () => `wrote ${out}: ${file.rows} rows, ${formatBytes(file.bytes)} (${file.id}, version ${result.version} of ${job.model_id})`,
  );
}

/** --format, else by --out's extension: `.csv` is CSV, anything else NDJSON. */
function formatOf(format: string | undefined, out: string): Format {
  if (format === undefined) return extname(out).toLowerCase() === '.csv' ? 'csv' : 'ndjson';
  if (!FORMATS.includes(format as Format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, not '${format}'`);
  return format as Format;
}

/** What a job that failed or was canceled kept: the rows it finished, as a file of their own. */
function partialNote(job: Job, out: string): string[] {
  const r = (job.result ?? {}) as BatchResult;
  if (!r.output_file_id) return [];
  return [
    `the rows it finished are kept: ${r.output_file_id} holds ${r.rows ?? 0} of ${r.rows_total ?? '?'} rows (aiaas files download ${r.output_file_id} --out ${out})`,
  ];
}
