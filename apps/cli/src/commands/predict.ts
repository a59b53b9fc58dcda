import type { Job } from '@app/client';
import type { Command } from 'commander';
import { contextOf, defined, parse, UsageError } from '../context.js';
import { table } from '../output.js';
import { predictDataset } from './batch-predict.js';
import { firstNonImage, predictImageFiles } from './images.js';
import { readInputs } from './inputs.js';
import { JobEndedBadly } from './outcome.js';

/**
 * `predict`: rows from a JSON file or stdin, or image files, answered inline (a table, or
 * `{predictions}` under --json); or every row of a dataset (`--dataset … --out FILE`), a batch job
 * whose output file is written to FILE (batch-predict.ts).
 */
export function predictCommand(program: Command): void {
  program
    .command('predict')
    .description(
      'predict with a model: INPUT is a JSON file (an array of rows, one row, or {"inputs": [...]}), or - for stdin; ' +
        'for an image-classification model, one or more PNG or JPEG files (one line per file: label and its probability); ' +
        'or every row of a dataset (--dataset ds_… --out FILE): a batch job, a bar of rows, then its output file written to FILE',
    )
    .argument('[input...]', 'INPUT.json, - to read stdin, or image files (none with --dataset)')
    .requiredOption('--model <model>', 'the model id or name')
    .option('--version <n>', 'a version (default: latest)', parse.int('--version'))
    .option('--alias <alias>', 'or an alias (a traffic split picks per request; a batch job picks once)')
    .option('--explain', 'add a score per input feature or token (images: a saliency map, in the --json output)')
    .option('--dataset <id>', 'batch: predict every row of this dataset (ds_…) into --out')
    .option('--out <file>', 'batch: where the predictions are written (through a temporary file beside it)')
    .option('--format <format>', 'batch: csv or ndjson (default: csv for a .csv --out, else ndjson)')
    .option('--include-inputs', "batch: each row's columns beside its prediction")
    .action(async (input: string[], opts: PredictOptions, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (opts.dataset) {
        if (input.length > 0)
          throw new UsageError(
            `predict takes INPUT or --dataset, not both: --dataset predicts the dataset's rows (got ${input.join(' ')})`,
          );
        if (opts.explain)
          throw new UsageError('--explain does not apply to --dataset (a batch prediction): predict those rows from a JSON file');
        await predictDataset(ctx, { ...opts, dataset: opts.dataset });
        return;
      }
      const batchOnly = (['out', 'format', 'includeInputs'] as const).find((k) => opts[k] !== undefined);
      if (batchOnly)
        throw new UsageError(`--${batchOnly === 'includeInputs' ? 'include-inputs' : batchOnly} goes with --dataset (a batch prediction)`);
      if (input.length === 0) throw new UsageError('predict needs INPUT.json, - (stdin) or image files, or --dataset ds_… --out FILE');
      const other = await firstNonImage(input);
      if (!other) {
        await predictImageFiles(ctx, input, opts);
        return;
      }
      if (input.length > 1)
        throw new UsageError(
          `predict takes one JSON file (or -), or PNG and JPEG files: ${other.why === 'stdin' ? '- (stdin) goes alone' : `${other.path} ${other.why}`}`,
        );
      const inputs = await readInputs(input[0]);
      const answer = await ctx.client.call(
        ctx.client.api.POST('/v1/models/{id}/predict', {
          params: { path: { id: opts.model } },
          body: { inputs, ...defined({ version: opts.version, alias: opts.alias, explain: opts.explain }) },
          headers: { Prefer: 'wait=60' },
        }),
      );
      let done: Job & { predictions?: unknown[]; explanations?: unknown[] } = answer;
      if (!(answer.status === 'succeeded' && answer.predictions)) {
        // 202: not done within the wait; wait for the job, whose result holds the predictions.
        const job = await ctx.client.jobs.wait(answer.id);
        done = { ...job, ...(job.result as { predictions?: unknown[]; explanations?: unknown[] } | null) };
      }
      if (done.status !== 'succeeded') throw new JobEndedBadly(done);
      const predictions = (done.predictions ?? []) as Array<Record<string, unknown>>;
      ctx.out.result(
        ctx.json ? { predictions, ...(done.explanations ? { explanations: done.explanations } : {}), job_id: done.id } : predictions,
        () =>
          table(
            predictions.map((p, i): Record<string, unknown> => ({ ...p, row: i + 1 })),
            [
              ['row', (p) => p.row],
              ['prediction', (p) => ('label' in p ? p.label : p.value)],
              [
                'probability',
                (p) => (p.probabilities && typeof p.label === 'string' ? (p.probabilities as Record<string, number>)[p.label] : ''),
              ],
              ['version', (p) => p.version],
            ],
          ),
      );
    });
}

interface PredictOptions {
  model: string;
  version?: number;
  alias?: string;
  explain?: boolean;
  dataset?: string;
  out?: string;
  format?: string;
  includeInputs?: boolean;
}
