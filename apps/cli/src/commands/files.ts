import type { FileObject } from '@app/client';
import type { Command } from 'commander';
import { contextOf, parse } from '../context.js';
import { checkWritable, printFile, saveFile } from '../download.js';
import { ago, details, table } from '../output.js';
import { formatBytes } from '../transfer-bar.js';

export function filesCommand(program: Command): void {
  const files = program.command('files').description('output files of batch predictions (predict --dataset): list, show, download, delete');

  files
    .command('list')
    .description('output files, newest first')
    .option('--limit <n>', 'how many (1 to 100)', parse.int('--limit'))
    .option('--starting-after <id>', 'the page after this file')
    .action(async (opts: { limit?: number; startingAfter?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.files.list({ limit: opts.limit, starting_after: opts.startingAfter });
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (f) => f.id],
          ['filename', (f) => f.filename],
          ['rows', (f) => f.rows],
          ['size', (f) => formatBytes(f.bytes)],
          ['job', (f) => f.job_id],
          ['created', (f) => ago(f.created_at)],
          ['expires', (f) => f.expires_at.slice(0, 10)],
        ]),
      );
    });

  files
    .command('show')
    .alias('get')
    .description('one output file: its rows, size, sha256, job and expiry')
    .argument('<id>', 'file_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      ctx.out.result(await ctx.client.files.get(id), describeFile);
    });

  files
    .command('download')
    .description("an output file's content (NDJSON or CSV), streamed to --out or to stdout, and checked against its sha256")
    .argument('<id>', 'file_…')
    .option('--out <path>', 'write it to this file (through a temporary file beside it); default: stdout')
    .action(async (id: string, opts: { out?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (opts.out) await checkWritable(opts.out);
      const file = await ctx.client.files.get(id);
      if (!opts.out) {
        await printFile(ctx, file);
        return;
      }
      await saveFile(ctx, file, opts.out);
      ctx.out.result({ file, path: opts.out }, () => `wrote ${opts.out}: ${file.rows} rows, ${formatBytes(file.bytes)} (${file.id})`);
    });

  files
    .command('delete')
    .description('delete an output file (its storage is given back to the quota)')
    .argument('<id>', 'file_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      ctx.out.result(await ctx.client.files.delete(id), (d) => `deleted ${d.id}`);
    });
}

function describeFile(f: FileObject): string[] {
  return details([
    ['id', f.id],
    ['filename', f.filename],
    ['content type', f.content_type],
    ['rows', f.rows],
    ['bytes', f.bytes],
    ['sha256', f.sha256],
    ['job', f.job_id],
    ['created', f.created_at],
    ['expires', f.expires_at],
  ]);
}
