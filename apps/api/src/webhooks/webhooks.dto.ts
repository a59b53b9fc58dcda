import { type MessageWithLog, WEBHOOK_EVENT_TYPES, type WebhookEndpoint } from '@app/db';
import { z } from 'zod';
import { iso, Timestamp } from '../http/schemas.js';

const Url = z
  .string()
  .trim()
  .min(1)
  .max(2000)
  .describe(
    "http or https; refused (400 url_not_allowed) when the host is or resolves to an address that is not globally reachable, or to this service's own host",
  );
const Events = z
  .array(z.enum(WEBHOOK_EVENT_TYPES))
  .max(WEBHOOK_EVENT_TYPES.length)
  .describe('the event types to receive; empty or absent: all');

export const CreateWebhookBody = z
  .object({
    url: Url,
    events: Events.optional(),
    description: z.string().max(500).optional(),
  })
  .strict();

export const UpdateWebhookBody = z
  .object({
    url: Url.optional(),
    events: Events.optional(),
    description: z.string().max(500).nullable().optional(),
    enabled: z.boolean().optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'give at least one of url, events, description, enabled');

export const WebhookSchema = z
  .object({
    id: z.string(),
    object: z.literal('webhook_endpoint'),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).describe('empty: all event types'),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable().describe('"gone": the receiver answered 410 and the service disabled the endpoint'),
    previous_secret_expires_at: Timestamp.nullable().describe('during a rotation: until when the previous secret also signs'),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .meta({ id: 'WebhookEndpoint' });

export const WebhookWithSecretSchema = WebhookSchema.extend({ secret: z.string().describe('whsec_…, shown once') }).meta({
  id: 'WebhookEndpointWithSecret',
});

export const DefaultSecretSchema = z
  .object({ key: z.string().describe("whsec_…: signs deliveries to jobs' own webhook_url") })
  .meta({ id: 'WebhookDefaultSecret' });

export const AttemptSchema = z.object({
  status_code: z.number().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number(),
  attempted_at: Timestamp,
});

export const DeliverySchema = z
  .object({
    id: z.string().describe('the message id: the webhook-id header of every attempt'),
    object: z.literal('webhook_delivery'),
    endpoint_id: z.string(),
    event_type: z.string(),
    status: z.enum(['pending', 'queued', 'succeeded', 'failed']),
    attempts: z.array(AttemptSchema),
    next_attempt_at: Timestamp.nullable(),
    payload: z.record(z.string(), z.unknown()).describe('the body as sent: {type, timestamp, data}'),
    created_at: Timestamp,
    delivered_at: Timestamp.nullable(),
  })
  .meta({ id: 'WebhookDelivery' });

export function webhookView(e: WebhookEndpoint): z.infer<typeof WebhookSchema> {
  return {
    id: e.id,
    object: 'webhook_endpoint',
    url: e.url,
    description: e.description,
    events: e.events as z.infer<typeof WebhookSchema>['events'],
    enabled: e.enabled,
    disabled_reason: e.disabledReason,
    previous_secret_expires_at:
      e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > new Date() ? iso(e.previousSecretExpiresAt) : null,
    created_at: iso(e.createdAt)!,
    updated_at: iso(e.updatedAt)!,
  };
}

export function deliveryView(m: MessageWithLog): z.infer<typeof DeliverySchema> {
  return {
    id: m.id,
    object: 'webhook_delivery',
    endpoint_id: m.endpointId!,
    event_type: m.eventType,
    status: m.status,
    attempts: m.log.map((a) => ({
      status_code: a.statusCode,
      error: a.error,
      duration_ms: a.durationMs,
      attempted_at: iso(a.attemptedAt)!,
    })),
    next_attempt_at: m.status === 'pending' || m.status === 'queued' ? iso(m.nextAttemptAt) : null,
    payload: m.payload as Record<string, unknown>,
    created_at: iso(m.createdAt)!,
    delivered_at: iso(m.deliveredAt),
  };
}
