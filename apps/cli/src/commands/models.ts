import type { Command } from 'commander';
import { contextOf, parse, UsageError } from '../context.js';
import { ago, details, metricsTable, table } from '../output.js';

const TASKS = ['classification', 'regression', 'text-classification', 'image-classification'] as const;

export function modelsCommand(program: Command): void {
  const models = program.command('models').description('create, list and show models and their versions');

  models
    .command('create')
    .description('create a model: a name unique within the tenant, and a task')
    .argument('<name>', 'letters, digits, dots, dashes and underscores')
    .requiredOption('--task <task>', `one of ${TASKS.join(', ')}`)
    .option('--description <text>', 'what it is for')
    .action(async (name: string, opts: { task: string; description?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (!TASKS.includes(opts.task as (typeof TASKS)[number]))
        throw new UsageError(`--task must be one of ${TASKS.join(', ')}, not '${opts.task}'`);
      const model = await ctx.client.call(
        ctx.client.api.POST('/v1/models', {
          body: { name, task: opts.task as (typeof TASKS)[number], ...(opts.description ? { description: opts.description } : {}) },
        }),
      );
      ctx.out.result(model, (m) => `created ${m.id} (${m.name}, ${m.task})`);
    });

  models
    .command('list')
    .description('models, newest first')
    .option('--limit <n>', 'how many (1 to 100)', parse.int('--limit'))
    .option('--starting-after <id>', 'the page after this model')
    .action(async (opts: { limit?: number; startingAfter?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.call(
        ctx.client.api.GET('/v1/models', { params: { query: { limit: opts.limit, starting_after: opts.startingAfter } } }),
      );
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (m) => m.id],
          ['name', (m) => m.name],
          ['task', (m) => m.task],
          ['latest', (m) => m.latest_version],
          ['aliases', (m) => Object.keys(m.aliases).join(' ')],
          ['created', (m) => ago(m.created_at)],
        ]),
      );
    });

  models
    .command('show')
    .description('a model with its versions (or one version with --version)')
    .argument('<model>', 'the model id or name')
    .option('--version <n>', 'show this version, with its metrics', parse.int('--version'))
    .action(async (id: string, opts: { version?: number }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (opts.version !== undefined) {
        const v = await ctx.client.call(ctx.client.api.GET('/v1/models/{id}/versions/{n}', { params: { path: { id, n: opts.version } } }));
        ctx.out.result(v, () => [
          ...details([
            ['id', v.id],
            ['model', v.model_id],
            ['version', v.version],
            ['source', v.source],
            ['parameters', v.parameters],
            ['backend', v.backend],
            ['training job', v.training_job_id],
            ['dataset', v.dataset_id],
            ['labels', v.labels?.join(' ')],
            ['sha256', v.sha256],
            ['created', v.created_at],
          ]),
          '',
          ...metricsTable(v.metrics),
        ]);
        return;
      }
      const model = await ctx.client.call(ctx.client.api.GET('/v1/models/{id}', { params: { path: { id } } }));
      const versions = await ctx.client.call(ctx.client.api.GET('/v1/models/{id}/versions', { params: { path: { id } } }));
      ctx.out.result({ ...model, versions: versions.data }, (m) => [
        ...details([
          ['id', m.id],
          ['name', m.name],
          ['task', m.task],
          ['description', m.description],
          ['latest version', m.latest_version],
          ['created', m.created_at],
        ]),
        ...Object.entries(m.aliases).map(
          ([alias, targets]) =>
            `alias ${alias} → ${targets.map((t) => `v${t.version}${targets.length > 1 ? ` (${t.weight}%)` : ''}`).join(', ')}`,
        ),
        '',
        ...table(m.versions, [
          ['version', (v) => v.version],
          ['source', (v) => v.source],
          ['parameters', (v) => v.parameters],
          ['metric', (v) => headline(v.metrics)],
          ['created', (v) => ago(v.created_at)],
        ]),
      ]);
    });
}

/** The one figure that says how good a version is: accuracy, else r2, else loss. */
function headline(metrics: Record<string, unknown>): string {
  for (const k of ['accuracy', 'r2', 'loss']) if (typeof metrics[k] === 'number') return `${k} ${(metrics[k] as number).toFixed(4)}`;
  return '-';
}
