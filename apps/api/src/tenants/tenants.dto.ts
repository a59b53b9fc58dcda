import { effectiveQuotas, PLANS, QUOTA_NAMES, type Quotas } from '@app/common';
import type { Tenant } from '@app/db';
import { z } from 'zod';
import { iso, Timestamp, listQuery } from '../http/schemas.js';

const quotaShape = Object.fromEntries(QUOTA_NAMES.map((q) => [q, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)])) as Record<
  (typeof QUOTA_NAMES)[number],
  z.ZodNumber
>;

export const QuotasSchema = z.object(quotaShape).meta({ id: 'Quotas' });

/** Overrides of the plan's quotas; `null` returns a quota to the plan's value. */
export const QuotaOverrides = z
  .object(Object.fromEntries(QUOTA_NAMES.map((q) => [q, quotaShape[q].nullable().optional()])) as Record<string, z.ZodType>)
  .strict();

export const CreateTenantBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    plan: z.enum(PLANS).default('free'),
    quotas: QuotaOverrides.optional(),
  })
  .strict();

export const UpdateTenantBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    plan: z.enum(PLANS).optional(),
    quotas: QuotaOverrides.optional(),
    status: z.enum(['active', 'suspended']).optional(),
  })
  .strict();

export const TenantListQuery = listQuery({ status: z.enum(['active', 'suspended']).optional() });

export const TenantSchema = z
  .object({
    id: z.string(),
    object: z.literal('tenant'),
    name: z.string(),
    plan: z.enum(PLANS),
    status: z.enum(['active', 'suspended']),
    quotas: QuotasSchema,
    quota_overrides: z.record(z.string(), z.number()),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .meta({ id: 'Tenant' });

/** A UTC day: `YYYY-MM-DD`, or an ISO 8601 time whose day is taken. February 30th is refused. */
const Day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T.*)?$/, 'must be a date (YYYY-MM-DD) or an ISO 8601 time')
  .transform((v, ctx) => {
    const day = v.slice(0, 10);
    const parsed = new Date(`${day}T00:00:00Z`);
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== day) {
      ctx.addIssue({ code: 'custom', message: `${day} is not a real date` });
      return z.NEVER;
    }
    return day;
  });

export const UsageQuery = z.object({ from: Day.optional(), to: Day.optional() }).strict();

export const TenantUsageSchema = z
  .object({
    object: z.literal('tenant_usage'),
    tenant_id: z.string(),
    from: z.string(),
    to: z.string(),
    requests: z.number(),
    compute_seconds: z.number().describe('whole seconds metered per day (each job rounded up)'),
    compute_seconds_by_backend: z
      .record(z.string(), z.number())
      .describe("the exact compute seconds of the period's jobs, by the TF.js backend that ran them"),
    storage_bytes: z.number().describe('datasets and model artifacts, now'),
    jobs: z.record(z.string(), z.record(z.string(), z.number())).describe('jobs by type, then by status'),
    daily: z.array(z.object({ day: z.string(), metric: z.string(), value: z.number() })),
  })
  .meta({ id: 'TenantUsage' });

export type TenantView = z.infer<typeof TenantSchema>;

export function tenantView(t: Tenant): TenantView {
  const overrides = (t.quotas ?? {}) as Record<string, number>;
  return {
    id: t.id,
    object: 'tenant',
    name: t.name,
    plan: t.plan as TenantView['plan'],
    status: t.status,
    quotas: effectiveQuotas(t.plan, overrides) satisfies Quotas,
    quota_overrides: overrides,
    created_at: iso(t.createdAt)!,
    updated_at: iso(t.updatedAt)!,
  };
}
