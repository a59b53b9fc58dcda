import type { Tenant } from '@app/client';
import type { Command } from 'commander';
import { contextOf, UsageError } from '../context.js';
import { ago, details, formatNumber, table } from '../output.js';

const PLANS = ['free', 'pro', 'enterprise'] as const;

/** Operator commands: they take an admin key (`AIAAS_ADMIN_KEY`, else `AIAAS_API_KEY`, or --api-key). */
export function adminCommand(program: Command): void {
  const admin = program.command('admin').description('operator commands (an admin key)');
  const tenants = admin.command('tenants').description('create, list, suspend tenants; their quotas');

  tenants
    .command('create')
    .description('a tenant, and with --key its first API key (the secret is shown once)')
    .argument('<name>', 'the tenant name')
    .option('--plan <plan>', PLANS.join(', '))
    .option('--quota <name=value...>', 'quota overrides, e.g. --quota max_concurrent_jobs=4')
    .option('--key <name>', 'also create a first API key with this name')
    .action(async (name: string, opts: { plan?: string; quota?: string[]; key?: string }, cmd: Command) => {
      const ctx = contextOf(cmd, 'admin');
      if (opts.plan && !PLANS.includes(opts.plan as (typeof PLANS)[number]))
        throw new UsageError(`--plan must be one of ${PLANS.join(', ')}`);
      const tenant = await ctx.client.call(
        ctx.client.api.POST('/v1/admin/tenants', {
          body: {
            name,
            ...(opts.plan ? { plan: opts.plan as (typeof PLANS)[number] } : {}),
            ...(opts.quota ? { quotas: quotaOverrides(opts.quota) } : {}),
          },
        }),
      );
      const key = opts.key
        ? await ctx.client.call(
            ctx.client.api.POST('/v1/admin/tenants/{id}/api-keys', { params: { path: { id: tenant.id } }, body: { name: opts.key } }),
          )
        : undefined;
      ctx.out.result(key ? { ...tenant, api_key: key } : tenant, () => [
        `created ${tenant.id} (${tenant.name}, plan ${tenant.plan})`,
        ...(key ? [`key ${key.id}: ${key.secret}  (shown once)`] : []),
      ]);
    });

  tenants
    .command('list')
    .description('tenants, newest first')
    .option('--status <status>', 'active or suspended')
    .action(async (opts: { status?: 'active' | 'suspended' }, cmd: Command) => {
      const ctx = contextOf(cmd, 'admin');
      const list = await ctx.client.call(
        ctx.client.api.GET('/v1/admin/tenants', { params: { query: { status: opts.status, limit: 100 } } }),
      );
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (t) => t.id],
          ['name', (t) => t.name],
          ['plan', (t) => t.plan],
          ['status', (t) => t.status],
          ['created', (t) => ago(t.created_at)],
        ]),
      );
    });

  for (const [verb, status] of [
    ['suspend', 'suspended'],
    ['activate', 'active'],
  ] as const) {
    tenants
      .command(verb)
      .description(verb === 'suspend' ? "refuse the tenant's keys (403) until it is activated" : 'let a suspended tenant in again')
      .argument('<id>', 'ten_…')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const ctx = contextOf(cmd, 'admin');
        const tenant = await ctx.client.call(
          ctx.client.api.PATCH('/v1/admin/tenants/{id}', { params: { path: { id } }, body: { status } }),
        );
        ctx.out.result(tenant, (t) => `${t.id} (${t.name}): ${t.status}`);
      });
  }

  tenants
    .command('quotas')
    .description("a tenant's quotas; with name=value pairs, set overrides first (name=plan returns one to the plan's value)")
    .argument('<id>', 'ten_…')
    .argument('[overrides...]', 'e.g. max_concurrent_jobs=4 requests_per_minute=plan')
    .action(async (id: string, overrides: string[], _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd, 'admin');
      const tenant = overrides.length
        ? await ctx.client.call(
            ctx.client.api.PATCH('/v1/admin/tenants/{id}', { params: { path: { id } }, body: { quotas: quotaOverrides(overrides) } }),
          )
        : await ctx.client.call(ctx.client.api.GET('/v1/admin/tenants/{id}', { params: { path: { id } } }));
      ctx.out.result(tenant, quotasTable);
    });

  admin
    .command('overview')
    .description('the service at a glance: jobs, throughput, latencies, queues, workers, webhooks')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd, 'admin');
      const o = await ctx.client.call(ctx.client.api.GET('/v1/admin/overview', {}));
      const q = (x: { p50: number | null; p95: number | null }) =>
        `p50 ${x.p50 === null ? '-' : formatNumber(x.p50)} s, p95 ${x.p95 === null ? '-' : formatNumber(x.p95)} s`;
      ctx.out.result(o, () => [
        ...details([
          [
            'jobs',
            Object.entries(o.jobs.by_status)
              .map(([s, n]) => `${s} ${n}`)
              .join(', '),
          ],
          [
            'last 5 min',
            `${o.recent.last_5m.finished} finished, ${o.recent.last_5m.failed} failed (${formatNumber(o.recent.throughput_per_minute)}/min, failure rate ${formatNumber(o.recent.failure_rate)})`,
          ],
          ['last hour', `${o.recent.last_1h.finished} finished, ${o.recent.last_1h.failed} failed`],
          ['queue wait', q(o.latency_seconds.queue_wait)],
          ['run time', q(o.latency_seconds.run)],
          ['workers', `${o.workers.online} online, ${o.workers.busy}/${o.workers.slots} slots busy`],
          ['webhooks', `${o.webhooks.pending} pending, ${o.webhooks.failing} failing, ${o.webhooks.failed} failed`],
        ]),
        '',
        ...table(o.queues, [
          ['queue', (x) => x.name],
          ['scheduled', (x) => x.scheduled],
          ['ready', (x) => x.ready],
          ['active', (x) => x.active],
          ['delayed', (x) => x.delayed],
        ]),
      ]);
    });

  admin
    .command('workers')
    .description('workers online: backend, concurrency, current jobs, last heartbeat')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd, 'admin');
      const list = await ctx.client.call(ctx.client.api.GET('/v1/admin/workers', {}));
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (w) => w.id],
          ['host', (w) => `${w.host}:${w.pid}`],
          ['backend', (w) => w.backend],
          ['concurrency', (w) => w.concurrency],
          ['jobs', (w) => w.current_jobs.join(' ')],
          ['heartbeat', (w) => ago(w.last_heartbeat_at)],
        ]),
      );
    });
}

/** `name=value` pairs as quota overrides; `plan` (or `null`) returns the quota to the plan's value. */
function quotaOverrides(pairs: string[]): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const pair of pairs) {
    const m = /^([a-z_]+)=(\d+|plan|null)$/.exec(pair.trim());
    if (!m) throw new UsageError(`a quota is name=value (a whole number, or plan), not '${pair}'`);
    out[m[1]] = m[2] === 'plan' || m[2] === 'null' ? null : Number(m[2]);
  }
  return out;
}

function quotasTable(t: Tenant): string[] {
  return [
    `${t.id} (${t.name}), plan ${t.plan}, ${t.status}`,
    ...table(Object.entries(t.quotas), [
      ['quota', ([k]) => k],
      ['value', ([, v]) => v],
      ['source', ([k]) => (k in t.quota_overrides ? 'override' : 'plan')],
    ]),
  ];
}
