import { STATUSES } from '@app/common';
import { z } from 'zod';
import { listQuery, Timestamp } from '../http/schemas.js';
import { JobSchema } from '../jobs/jobs.dto.js';

export const AdminJobListQuery = listQuery({
  tenant: z
    .string()
    .max(100)
    .regex(/^ten_[0-9A-Za-z]+$/, 'must be a tenant id (ten_...)')
    .optional(),
  type: z.enum(['training', 'evaluation', 'inference']).optional(),
  status: z.enum(STATUSES).optional(),
});

export const AdminJobSchema = JobSchema.extend({ tenant_id: z.string() }).meta({ id: 'AdminJob' });

const Window = z.object({ finished: z.number(), succeeded: z.number(), failed: z.number() });
const Quantiles = z.object({ p50: z.number().nullable(), p95: z.number().nullable() });

export const OverviewSchema = z
  .object({
    object: z.literal('overview'),
    generated_at: Timestamp,
    jobs: z.object({
      by_status: z.object({ queued: z.number(), running: z.number(), succeeded: z.number(), failed: z.number(), canceled: z.number() }),
      by_type: z.record(z.string(), z.record(z.string(), z.number())).describe('type → status → count'),
    }),
    recent: z.object({
      last_5m: Window,
      last_1h: Window,
      throughput_per_minute: z.number().describe('jobs finished per minute over the last 5 minutes'),
      failure_rate: z.number().describe('failed ÷ finished over the last 5 minutes'),
    }),
    latency_seconds: z.object({ queue_wait: Quantiles, run: Quantiles }).describe('over jobs finished in the last hour'),
    queues: z.array(
      z.object({
        name: z.string(),
        scheduled: z.number().describe('waiting in the fair scheduler'),
        ready: z.number().nullable().describe('in BullMQ, ready for a worker (null: Redis did not answer)'),
        active: z.number().nullable(),
        delayed: z.number().nullable(),
      }),
    ),
    tenants: z
      .array(z.object({ tenant_id: z.string(), name: z.string(), queued: z.number(), running: z.number() }))
      .describe('tenants with queued or running jobs'),
    workers: z.object({ online: z.number(), slots: z.number(), busy: z.number() }),
    webhooks: z.object({
      pending: z.number(),
      failing: z.number().describe('pending after at least one failed attempt'),
      failed: z.number(),
    }),
  })
  .meta({ id: 'Overview' });

export const WebhookFailureQuery = z
  .object({
    state: z.enum(['failed', 'failing']).default('failed').describe('failed: gave up; failing: still retrying after a failed attempt'),
    limit: z.coerce.number().int().min(1).max(100).default(50),
  })
  .strict();

export const WebhookFailureSchema = z
  .object({
    id: z.string().describe('the message id (webhook-id)'),
    object: z.literal('webhook_failure'),
    tenant_id: z.string(),
    endpoint_id: z.string().nullable().describe("null: a job's own webhook_url"),
    url: z.string(),
    event_type: z.string(),
    status: z.string(),
    attempts: z.number(),
    last_error: z.string().nullable(),
    next_attempt_at: Timestamp.nullable(),
    created_at: Timestamp,
  })
  .meta({ id: 'WebhookFailure' });
