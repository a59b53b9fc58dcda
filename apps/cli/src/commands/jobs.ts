import type { Job, JobEvent } from '@app/client';
import type { Command } from 'commander';
import { contextOf, defined, parse, type Context } from '../context.js';
import { ago, details, formatNumber, formatSeconds, metricsTable, table } from '../output.js';
import { watchJob } from '../watch.js';
import { exitCodeOf } from './outcome.js';

const TYPES = ['training', 'evaluation', 'inference'] as const;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;

export function jobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('list, show, cancel jobs and read their events');

  jobs
    .command('list')
    .description('jobs, newest first')
    .option('--type <type>', TYPES.join(', '))
    .option('--status <status>', STATUSES.join(', '))
    .option('--model <model>', 'a model id or name')
    .option('--limit <n>', 'how many (1 to 100)', parse.int('--limit'))
    .option('--starting-after <id>', 'the page after this job')
    .action(
      async (
        opts: { type?: (typeof TYPES)[number]; status?: (typeof STATUSES)[number]; model?: string; limit?: number; startingAfter?: string },
        cmd: Command,
      ) => {
        const ctx = contextOf(cmd);
        const query = { type: opts.type, status: opts.status, model: opts.model, limit: opts.limit, starting_after: opts.startingAfter };
        const list = await ctx.client.call(ctx.client.api.GET('/v1/jobs', { params: { query } }));
        ctx.out.result(list, (l) =>
          table(l.data, [
            ['id', (j) => j.id],
            ['type', (j) => j.type],
            ['status', (j) => j.status],
            ['model', (j) => j.model_id],
            ['version', (j) => j.version],
            ['progress', (j) => (j.status === 'running' ? `${j.progress.percent}%` : j.status === 'queued' ? j.waiting_for : '')],
            ['created', (j) => ago(j.created_at)],
          ]),
        );
      },
    );

  jobs
    .command('show')
    .description('a job: status, progress, result or error')
    .argument('<id>', 'job_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const job = await ctx.client.jobs.get(id);
      ctx.out.result(job, describeJob);
    });

  jobs
    .command('cancel')
    .description('cancel a job: a queued one never starts, a running one stops within two seconds')
    .argument('<id>', 'job_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const job = await ctx.client.jobs.cancel(id);
      ctx.out.result(job, (j) => `${j.id}: ${j.status}${j.cancel_requested && j.status === 'running' ? ' (stopping)' : ''}`);
    });

  jobs
    .command('logs')
    .description("a job's events, oldest first (--follow: live until it ends)")
    .argument('<id>', 'job_…')
    .option('-f, --follow', 'stream events until the job ends')
    .action(async (id: string, opts: { follow?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (opts.follow) {
        for await (const e of ctx.client.jobs.stream(id)) ctx.out.line(ctx.json ? JSON.stringify(e) : eventLine(e));
        return;
      }
      const events: JobEvent[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await ctx.client.call(
          ctx.client.api.GET('/v1/jobs/{id}/events', { params: { path: { id }, query: { limit: 100, starting_after: after } } }),
        );
        events.push(...page.data);
        if (!page.has_more || page.data.length === 0) break;
        after = page.data.at(-1)!.id;
      }
      ctx.out.result({ object: 'list', data: events, has_more: false }, (l) => l.data.map(eventLine));
    });

  program
    .command('train')
    .description('train a new version of a model on a dataset')
    .requiredOption('--model <model>', 'the model id or name')
    .requiredOption('--dataset <id>', 'ds_…')
    .option('--epochs <n>', 'epochs', parse.int('--epochs'))
    .option('--batch-size <n>', 'batch size', parse.int('--batch-size'))
    .option('--learning-rate <x>', 'learning rate', parse.number('--learning-rate'))
    .option('--validation-split <x>', 'share of rows held out for validation', parse.number('--validation-split'))
    .option('--seed <n>', 'same seed, data and backend give the same weights', parse.int('--seed'))
    .option('--hyperparameters <json>', 'more hyperparameters, as a JSON object', parse.json('--hyperparameters'))
    .option('--base-version <n>', 'fine-tune from this version', parse.int('--base-version'))
    .option('--base-model <id>', 'transfer learning: a head on this foundation model (GET /v1/foundation-models lists them)')
    .option('--watch', 'follow it: a progress bar per epoch, then the metrics')
    .action(async (opts: TrainOptions, cmd: Command) => {
      const ctx = contextOf(cmd);
      const hyperparameters = {
        ...(opts.hyperparameters as Record<string, unknown> | undefined),
        ...defined({
          epochs: opts.epochs,
          batch_size: opts.batchSize,
          learning_rate: opts.learningRate,
          validation_split: opts.validationSplit,
          seed: opts.seed,
        }),
      };
      const job = await ctx.client.call(
        ctx.client.api.POST('/v1/jobs', {
          body: {
            type: 'training',
            model: opts.model,
            dataset: opts.dataset,
            hyperparameters,
            ...(opts.baseVersion ? { base_version: opts.baseVersion } : {}),
            ...(opts.baseModel ? { base_model: opts.baseModel } : {}),
          },
        }),
      );
      await follow(ctx, job, Boolean(opts.watch));
    });

  program
    .command('evaluate')
    .description('evaluate a version of a model on a dataset, and print its metrics')
    .requiredOption('--model <model>', 'the model id or name')
    .requiredOption('--dataset <id>', 'ds_…')
    .option('--version <n>', 'the version (default: latest)', parse.int('--version'))
    .option('--alias <alias>', 'or an alias')
    .option('--watch', 'follow its events')
    .action(async (opts: { model: string; dataset: string; version?: number; alias?: string; watch?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const job = await ctx.client.call(
        ctx.client.api.POST('/v1/jobs', {
          body: { type: 'evaluation', model: opts.model, dataset: opts.dataset, ...defined({ version: opts.version, alias: opts.alias }) },
          headers: opts.watch ? {} : { Prefer: 'wait=60' },
        }),
      );
      await follow(ctx, job, Boolean(opts.watch), true);
    });
}

interface TrainOptions {
  model: string;
  dataset: string;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  validationSplit?: number;
  seed?: number;
  hyperparameters?: unknown;
  baseVersion?: number;
  baseModel?: string;
  watch?: boolean;
}

/** After a submission: watch it (--watch), or wait for it (evaluation), or print it as it stands. */
async function follow(ctx: Context, submitted: Job, watch: boolean, wait = false): Promise<void> {
  let job = submitted;
  if (watch && !ctx.json) {
    const watched = await watchJob(ctx, job);
    if (watched.detached) {
      process.exitCode = 130;
      return;
    }
    job = watched.job;
    if (watched.canceledByUser) {
      ctx.out.result(job, describeJob);
      process.exitCode = 130;
      return;
    }
  } else if ((watch || wait) && !['succeeded', 'failed', 'canceled'].includes(job.status)) {
    job = await ctx.client.jobs.wait(job.id);
  }
  ctx.out.result(job, describeJob);
  process.exitCode = exitCodeOf(job);
}

export function describeJob(j: Job): string[] {
  const result = (j.result ?? {}) as { metrics?: Record<string, unknown>; best_epoch?: number; stopped_early?: boolean };
  const lines = details([
    ['id', j.id],
    ['type', j.type],
    [
      'status',
      j.status +
        (j.status === 'queued' && j.waiting_for
          ? ` (waiting for ${j.waiting_for}${j.queue_position ? `, position ${j.queue_position}` : ''})`
          : ''),
    ],
    ['model', j.model_id],
    ['version', j.version],
    ['dataset', j.dataset_id],
    ...(j.status === 'running'
      ? ([
          [
            'progress',
            `${j.progress.percent}%${j.progress.epoch ? `, epoch ${j.progress.epoch}/${j.progress.epochs}` : ''}, ETA ${formatSeconds(j.progress.eta_seconds)}`,
          ],
        ] as Array<[string, unknown]>)
      : []),
    ['backend', j.backend],
    ['compute', j.compute_seconds ? `${formatNumber(j.compute_seconds)} s` : null],
    ['created', j.created_at],
    ['finished', j.finished_at],
    ...(j.error ? ([['error', `${j.error.message} (${j.error.code})`]] as Array<[string, unknown]>) : []),
    ...(result.best_epoch
      ? ([['best epoch', `${result.best_epoch}${result.stopped_early ? ' (stopped early)' : ''}`]] as Array<[string, unknown]>)
      : []),
  ]);
  if (result.metrics) lines.push('', ...metricsTable(result.metrics));
  return lines;
}

function eventLine(e: JobEvent): string {
  const data = Object.keys(e.data).length ? `  ${JSON.stringify(e.data)}` : '';
  return `${e.created_at}  ${e.type}${data}`;
}
