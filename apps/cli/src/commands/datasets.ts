import type { Dataset } from '@app/client';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { contextOf, parse, UsageError } from '../context.js';
import { ago, details, table } from '../output.js';

const TASKS = ['classification', 'regression', 'text-classification', 'image-classification'] as const;
type Task = (typeof TASKS)[number];

export function datasetsCommand(program: Command): void {
  const datasets = program.command('datasets').description('upload and list datasets');

  datasets
    .command('upload')
    .description('upload a CSV (.csv), NDJSON (.ndjson, .jsonl) or JSON array of records (.json); the API checks it as it streams')
    .argument('<file>', 'the file to upload')
    .requiredOption('--task <task>', `one of ${TASKS.join(', ')}`)
    .option('--label <column>', 'the column to predict (default: label)')
    .option('--name <name>', 'the dataset name (default: the file name without its extension)')
    .option('--text-field <column>', 'the text column, for text-classification')
    .action(async (file: string, opts: { task: string; label?: string; name?: string; textField?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (!TASKS.includes(opts.task as Task)) throw new UsageError(`--task must be one of ${TASKS.join(', ')}, not '${opts.task}'`);
      const task = opts.task as Task;
      const name = opts.name ?? basename(file, extname(file));
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      }
      const meta = { name, task, ...(opts.label ? { label: opts.label } : {}), ...(opts.textField ? { text_field: opts.textField } : {}) };
      const ext = extname(file).toLowerCase();
      let dataset: Dataset;
      if (ext === '.json') {
        let records: unknown;
        try {
          records = JSON.parse(bytes.toString('utf8'));
        } catch (err) {
          throw new UsageError(`${file} is not JSON: ${(err as Error).message}`);
        }
        if (!Array.isArray(records)) throw new UsageError(`${file} must hold a JSON array of records`);
        dataset = await ctx.client.call(ctx.client.api.POST('/v1/datasets', { body: { ...meta, records } }));
      } else {
        const contentType = ext === '.ndjson' || ext === '.jsonl' ? 'application/x-ndjson' : 'text/csv';
        dataset = await ctx.client.datasets.upload({ ...meta, body: bytes, contentType });
      }
      ctx.out.result(dataset, (d) => [`uploaded ${d.id} (${d.name}): ${d.rows} rows, ${d.bytes} bytes`, ...columnsOf(d)]);
    });

  datasets
    .command('list')
    .description('datasets, newest first')
    .option('--limit <n>', 'how many (1 to 100)', parse.int('--limit'))
    .option('--starting-after <id>', 'the page after this dataset')
    .action(async (opts: { limit?: number; startingAfter?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.call(ctx.client.api.GET('/v1/datasets', { params: { query: { limit: opts.limit, starting_after: opts.startingAfter } } }));
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (d) => d.id],
          ['name', (d) => d.name],
          ['task', (d) => d.task],
          ['rows', (d) => d.rows],
          ['label', (d) => d.label],
          ['created', (d) => ago(d.created_at)],
        ]),
      );
    });

  datasets
    .command('show')
    .description('one dataset with its columns')
    .argument('<id>', 'ds_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const d = await ctx.client.call(ctx.client.api.GET('/v1/datasets/{id}', { params: { path: { id } } }));
      ctx.out.result(d, () => [...details([['id', d.id], ['name', d.name], ['task', d.task], ['rows', d.rows], ['bytes', d.bytes], ['sha256', d.sha256], ['created', d.created_at]]), '', ...columnsOf(d)]);
    });
}

function columnsOf(d: Dataset): string[] {
  return table(d.columns, [
    ['column', (c) => c.name],
    ['type', (c) => c.type],
    ['role', (c) => c.role],
    ['classes', (c) => (c.class_counts ? Object.entries(c.class_counts).map(([k, n]) => `${k}:${n}`).join(' ') : '')],
  ]);
}
