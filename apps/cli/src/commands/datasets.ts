import type { Dataset } from '@app/client';
import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { contextOf, parse, UsageError } from '../context.js';
import { ago, details, table } from '../output.js';
import { uploadImageDataset } from './images.js';

const TASKS = ['classification', 'regression', 'text-classification', 'image-classification'] as const;
type Task = (typeof TASKS)[number];

export function datasetsCommand(program: Command): void {
  const datasets = program.command('datasets').description('upload and list datasets');

  datasets
    .command('upload')
    .description(
      'upload a CSV (.csv), NDJSON (.ndjson, .jsonl) or JSON array of records (.json), which the API checks as it streams; ' +
        'for image-classification, also a folder of class folders (photos/cat/1.jpg, photos/dog/2.png: zipped as it is sent, ' +
        'dotfiles and files that are not PNG or JPEG skipped with a warning) or a .zip of one',
    )
    .argument('<path>', 'the file (or, for images, the folder) to upload')
    .requiredOption('--task <task>', `one of ${TASKS.join(', ')}`)
    .option('--label <column>', 'the column to predict (default: label; a folder of images is labelled by its class folders)')
    .option('--name <name>', 'the dataset name (default: the file or folder name without its extension)')
    .option('--text-field <column>', 'the text column, for text-classification')
    .action(async (path: string, opts: { task: string; label?: string; name?: string; textField?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (!TASKS.includes(opts.task as Task)) throw new UsageError(`--task must be one of ${TASKS.join(', ')}, not '${opts.task}'`);
      const task = opts.task as Task;
      const ext = extname(path).toLowerCase();
      const isFolder = (await stat(path).catch(() => null))?.isDirectory() ?? false;
      if (isFolder || ext === '.zip') {
        if (task !== 'image-classification')
          throw new UsageError(
            `${path} is a ${isFolder ? 'folder' : 'zip archive'}: only --task image-classification uploads ${isFolder ? 'folders' : 'archives'} (of class folders)`,
          );
        if (opts.label || opts.textField)
          throw new UsageError(
            `--${opts.label ? 'label' : 'text-field'} does not apply to a folder of images: the class folders are the labels`,
          );
        const dataset = await uploadImageDataset(ctx, path, opts.name);
        ctx.out.result(dataset, (d) => [`uploaded ${d.id} (${d.name}): ${d.rows} images, ${d.bytes} bytes`, ...columnsOf(d)]);
        return;
      }
      const name = opts.name ?? basename(path, extname(path));
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (err) {
        throw new UsageError(
          `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
        );
      }
      const meta = { name, task, ...(opts.label ? { label: opts.label } : {}), ...(opts.textField ? { text_field: opts.textField } : {}) };
      let dataset: Dataset;
      if (ext === '.json') {
        let records: unknown;
        try {
          records = JSON.parse(bytes.toString('utf8'));
        } catch (err) {
          throw new UsageError(`${path} is not JSON: ${(err as Error).message}`);
        }
        if (!Array.isArray(records)) throw new UsageError(`${path} must hold a JSON array of records`);
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
      const list = await ctx.client.call(
        ctx.client.api.GET('/v1/datasets', { params: { query: { limit: opts.limit, starting_after: opts.startingAfter } } }),
      );
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
      ctx.out.result(d, () => [
        ...details([
          ['id', d.id],
          ['name', d.name],
          ['task', d.task],
          ['rows', d.rows],
          ['bytes', d.bytes],
          ['sha256', d.sha256],
          ['created', d.created_at],
        ]),
        '',
        ...columnsOf(d),
      ]);
    });
}

/** An image column's figures (API.md "Images"), when the API gives them. */
type ImageStats = { count?: number; min_width?: number; min_height?: number; max_width?: number; max_height?: number };

function columnsOf(d: Dataset): string[] {
  const images = (c: Dataset['columns'][number]) => {
    const s = (c as { images?: ImageStats }).images;
    return s ? `${s.count ?? '?'} images, ${s.min_width}×${s.min_height} to ${s.max_width}×${s.max_height}` : '';
  };
  const withImages = d.columns.some((c) => images(c) !== '');
  return table(d.columns, [
    ['column', (c) => c.name],
    ['type', (c) => c.type],
    ['role', (c) => c.role],
    [
      'classes',
      (c) =>
        c.class_counts
          ? Object.entries(c.class_counts)
              .map(([k, n]) => `${k}:${n}`)
              .join(' ')
          : '',
    ],
    ...(withImages ? [['images', images] as [string, (c: Dataset['columns'][number]) => string]] : []),
  ]);
}
