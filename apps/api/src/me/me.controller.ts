import { Controller, Get, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CurrentTenant, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { Timestamp } from '../http/schemas.js';
import { QuotasSchema } from '../tenants/tenants.dto.js';
import { UsageCache } from './usage-cache.js';

const MeSchema = z
  .object({
    object: z.literal('me'),
    tenant: z.object({
      id: z.string(),
      name: z.string(),
      plan: z.string(),
      status: z.enum(['active', 'suspended']),
      created_at: Timestamp,
    }),
    key: z.object({ id: z.string(), scopes: z.array(z.string()), expires_at: Timestamp.nullable() }),
    quotas: QuotasSchema,
    usage: z.object({
      running_jobs: z.number(),
      queued_jobs: z.number(),
      compute_seconds_this_month: z.number(),
      storage_bytes: z.number(),
      requests_left_this_minute: z.number(),
    }),
  })
  .meta({ id: 'Me' });

@Controller('v1/me')
export class MeController {
  constructor(private readonly usage: UsageCache) {}

  @Get()
  @Endpoint({ summary: 'The tenant of this key, its quotas and its usage now', tags: ['Tenant'], response: MeSchema })
  async me(@CurrentTenant() p: TenantPrincipal, @Req() req: FastifyRequest): Promise<z.infer<typeof MeSchema>> {
    const now = await this.usage.get(p.tenantId);
    return {
      object: 'me',
      tenant: { id: p.tenantId, name: p.tenantName, plan: p.plan, status: p.tenantStatus, created_at: p.tenantCreatedAt },
      key: { id: p.keyId, scopes: [...p.scopes], expires_at: p.expiresAt === null ? null : new Date(p.expiresAt).toISOString() },
      quotas: p.quotas,
      usage: {
        running_jobs: now.runningJobs,
        queued_jobs: now.queuedJobs,
        compute_seconds_this_month: now.computeSecondsThisMonth,
        storage_bytes: now.storageBytes,
        requests_left_this_minute: req.rate?.remaining ?? p.quotas.requests_per_minute,
      },
    };
  }
}
