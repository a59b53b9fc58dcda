import type { Command } from 'commander';
import { contextOf, parse } from '../context.js';
import { ago, details, table } from '../output.js';

export function webhooksCommand(program: Command): void {
  const webhooks = program.command('webhooks').description('register endpoints and see their deliveries');

  webhooks
    .command('create')
    .description('register an endpoint; its secret (whsec_…) is shown once')
    .argument('<url>', 'where to POST events (https)')
    .option(
      '--events <types>',
      'comma-separated: job.succeeded,job.failed,job.canceled,job.started,job.progress,model.version.created (default: all)',
      parse.list,
    )
    .option('--description <text>', 'what it is for')
    .action(async (url: string, opts: { events?: string[]; description?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const endpoint = await ctx.client.call(
        ctx.client.api.POST('/v1/webhooks', {
          body: {
            url,
            ...(opts.events ? { events: opts.events as never } : {}),
            ...(opts.description ? { description: opts.description } : {}),
          },
        }),
      );
      ctx.out.result(endpoint, (e) => [`created ${e.id} → ${e.url}`, `secret ${e.secret}  (shown once: verify deliveries with it)`]);
    });

  webhooks
    .command('list')
    .description('endpoints')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.call(ctx.client.api.GET('/v1/webhooks', {}));
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (e) => e.id],
          ['url', (e) => e.url],
          ['events', (e) => (e.events.length ? e.events.join(',') : 'all')],
          ['enabled', (e) => (e.enabled ? 'yes' : `no${e.disabled_reason ? ` (${e.disabled_reason})` : ''}`)],
          ['created', (e) => ago(e.created_at)],
        ]),
      );
    });

  webhooks
    .command('deliveries')
    .description("an endpoint's messages, each with its attempts")
    .argument('<id>', 'whe_…')
    .option('--limit <n>', 'how many (1 to 100)', parse.int('--limit'))
    .action(async (id: string, opts: { limit?: number }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.call(
        ctx.client.api.GET('/v1/webhooks/{id}/deliveries', { params: { path: { id }, query: { limit: opts.limit } } }),
      );
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (d) => d.id],
          ['event', (d) => d.event_type],
          ['status', (d) => d.status],
          ['attempts', (d) => d.attempts.length],
          ['last answer', (d) => lastAttempt(d.attempts.at(-1))],
          ['created', (d) => ago(d.created_at)],
        ]),
      );
    });

  webhooks
    .command('show')
    .description('one endpoint')
    .argument('<id>', 'whe_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const e = await ctx.client.call(ctx.client.api.GET('/v1/webhooks/{id}', { params: { path: { id } } }));
      ctx.out.result(e, () =>
        details([
          ['id', e.id],
          ['url', e.url],
          ['events', e.events.length ? e.events.join(',') : 'all'],
          ['enabled', e.enabled],
          ['description', e.description],
          ['created', e.created_at],
        ]),
      );
    });
}

function lastAttempt(a: { status_code: number | null; error: string | null; duration_ms: number } | undefined): string {
  if (!a) return '-';
  return `${a.status_code ?? a.error ?? '?'} in ${a.duration_ms} ms`;
}
