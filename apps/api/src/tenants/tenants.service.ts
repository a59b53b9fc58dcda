import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { ALL_QUEUES, type RedisClient, Scheduler } from '@app/queue';
import {
  ApiKeyRepository,
  AuditRepository,
  Database,
  computeByBackend,
  jobCounts,
  Prisma,
  TenantRepository,
  toPage,
  UsageRepository,
} from '@app/db';
import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { KeyStore } from '../auth/key-store.js';
import { RateLimiter } from '../auth/rate-limiter.js';
import type { Actor } from '../http/actor.js';
import { REDIS } from '../infra/infra.module.js';
import { type CreateTenantBody, tenantView, type TenantListQuery, type UpdateTenantBody, type UsageQuery } from './tenants.dto.js';

/** Merges quota overrides: a number sets a quota, null returns it to the plan's value. */
export function mergeQuotas(current: Record<string, number>, patch: Record<string, unknown> | undefined): Record<string, number> {
  const out = { ...current };
  for (const [name, value] of Object.entries(patch ?? {})) {
    if (value === null) delete out[name];
    else if (typeof value === 'number') out[name] = value;
  }
  return out;
}

@Injectable()
export class TenantsService {
  constructor(
    private readonly db: Database,
    private readonly tenants: TenantRepository,
    private readonly keys: ApiKeyRepository,
    private readonly audit: AuditRepository,
    private readonly usage: UsageRepository,
    private readonly keyStore: KeyStore,
    private readonly rateLimiter: RateLimiter,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(actor: Actor, body: z.infer<typeof CreateTenantBody>) {
    const tenant = await this.db.prisma.$transaction(async (tx) => {
      const t = await this.tenants.create(tx, { name: body.name, plan: body.plan, quotas: mergeQuotas({}, body.quotas) });
      await this.audit.record(tx, {
        ...actor,
        tenantId: t.id,
        action: 'tenant.created',
        targetType: 'tenant',
        targetId: t.id,
        data: { name: t.name, plan: t.plan },
      });
      return t;
    });
    return tenantView(tenant);
  }

  async list(query: z.infer<typeof TenantListQuery>) {
    return toPage(await this.tenants.list(query), query.limit, tenantView);
  }

  async get(id: string) {
    const tenant = await this.tenants.get(id);
    if (!tenant) throw ApiError.notFound('tenant', id);
    return tenant;
  }

  async update(actor: Actor, id: string, body: z.infer<typeof UpdateTenantBody>) {
    const tenant = await this.db.prisma.$transaction(async (tx) => {
      const current = await tx.tenant.findUnique({ where: { id } });
      if (!current) throw ApiError.notFound('tenant', id);
      const quotas = mergeQuotas(current.quotas as Record<string, number>, body.quotas);
      const updated = await this.tenants.update(tx, id, {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.plan !== undefined ? { plan: body.plan } : {}),
        ...(body.status !== undefined ? { status: body.status } : {}),
        quotas,
      });
      const action =
        body.status && body.status !== current.status
          ? body.status === 'suspended'
            ? 'tenant.suspended'
            : 'tenant.reactivated'
          : 'tenant.updated';
      await this.audit.record(tx, {
        ...actor,
        tenantId: id,
        action,
        targetType: 'tenant',
        targetId: id,
        data: body as Prisma.InputJsonObject,
      });
      return updated;
    });
    // Status, plan and quotas are part of every cached key of the tenant.
    await this.keyStore.invalidate({ tenantId: id });
    return tenantView(tenant);
  }

  async delete(actor: Actor, id: string) {
    const hashes = await this.db.prisma.$transaction(async (tx) => {
      const current = await tx.tenant.findUnique({ where: { id } });
      if (!current) throw ApiError.notFound('tenant', id);
      const hashes = await this.keys.hashesOf(tx, id);
      await this.tenants.delete(tx, id);
      await this.audit.record(tx, {
        ...actor,
        tenantId: id,
        action: 'tenant.deleted',
        targetType: 'tenant',
        targetId: id,
        data: { name: current.name },
      });
      return hashes;
    });
    await this.keyStore.invalidate({ tenantId: id, hashes });
    await this.forgetRedisState(id);
    // Its waiting jobs are gone with it: the scheduler forgets them too.
    await new Scheduler(this.config, this.redis, 0, ALL_QUEUES).forget(id).catch(() => undefined);
    return { id, object: 'tenant' as const, deleted: true as const };
  }

  async usageOf(id: string, query: z.infer<typeof UsageQuery>) {
    await this.get(id);
    const today = new Date().toISOString().slice(0, 10);
    const from = query.from ?? `${today.slice(0, 8)}01`;
    const to = query.to ?? today;
    if (from > to) throw ApiError.invalid('parameter_invalid', `from (${from}) is after to (${to})`, 'from');
    const [rows, snapshot, pending, jobs, byBackend] = await Promise.all([
      this.usage.between(id, from, to),
      this.usage.snapshot(id),
      this.pendingRequests(id, from, to),
      jobCounts(this.db, id, from, to),
      computeByBackend(this.db, id, from, to),
    ]);
    const daily = [...rows];
    for (const [day, value] of pending) {
      const row = daily.find((r) => r.metric === 'requests' && r.day === day);
      if (row) row.value += value;
      else daily.push({ metric: 'requests', day, value });
    }
    daily.sort((a, b) => a.day.localeCompare(b.day) || a.metric.localeCompare(b.metric));
    const sum = (metric: string) => daily.filter((r) => r.metric === metric).reduce((n, r) => n + r.value, 0);
    return {
      object: 'tenant_usage' as const,
      tenant_id: id,
      from,
      to,
      requests: sum('requests'),
      compute_seconds: sum('compute_seconds'),
      compute_seconds_by_backend: byBackend,
      storage_bytes: snapshot.storageBytes,
      jobs,
      daily,
    };
  }

  /** Requests counted in Redis and not yet flushed to PostgreSQL by the UsageMeter (waiting, or in a batch being flushed). */
  private async pendingRequests(tenantId: string, from: string, to: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const keys = this.rateLimiter.usageKeys(tenantId);
    const hashes = await Promise.all(
      [keys.pending, keys.flushing].map((k) => this.redis.hgetall(k).catch(() => ({}) as Record<string, string>)),
    );
    for (const all of hashes) {
      for (const [day, value] of Object.entries(all)) if (day >= from && day <= to) out.set(day, (out.get(day) ?? 0) + Number(value));
    }
    return out;
  }

  private async forgetRedisState(tenantId: string): Promise<void> {
    const keys = this.rateLimiter.usageKeys(tenantId);
    await Promise.all([
      this.redis.del(keys.pending, keys.flushing, keys.owner).catch(() => undefined),
      this.redis.srem(this.rateLimiter.meteredKey, tenantId).catch(() => undefined),
    ]);
  }
}
