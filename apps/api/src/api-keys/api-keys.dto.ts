import { SCOPES } from '@app/common';
import type { ApiKey } from '@app/db';
import { z } from 'zod';
import { iso, Timestamp } from '../http/schemas.js';

export const CreateApiKeyBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    scopes: z
      .array(z.enum(SCOPES))
      .min(1)
      .max(SCOPES.length)
      .optional()
      .describe("default: the calling key's scopes (all scopes when an admin creates the key)"),
    expires_at: z
      .string()
      .datetime({ offset: true })
      .refine((v) => Date.parse(v) > Date.now(), 'must be in the future')
      .optional()
      .describe("default: the calling key's expiry (none when it has none, or when an admin creates the key)"),
    rate_limit_per_minute: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe("this key's own limit, under the tenant's; default: the calling key's own limit"),
  })
  .strict();

export const ApiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal('api_key'),
    tenant_id: z.string(),
    name: z.string(),
    prefix: z.string().describe('the first 12 characters of the secret'),
    scopes: z.array(z.enum(SCOPES)),
    rate_limit_per_minute: z.number().nullable(),
    expires_at: Timestamp.nullable(),
    revoked_at: Timestamp.nullable(),
    last_used_at: Timestamp.nullable(),
    created_at: Timestamp,
  })
  .meta({ id: 'ApiKey' });

export const CreatedApiKeySchema = ApiKeySchema.extend({ secret: z.string().describe('shown once, at creation') }).meta({
  id: 'CreatedApiKey',
});

export type ApiKeyView = z.infer<typeof ApiKeySchema>;

export function apiKeyView(k: ApiKey): ApiKeyView {
  return {
    id: k.id,
    object: 'api_key',
    tenant_id: k.tenantId,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes as ApiKeyView['scopes'],
    rate_limit_per_minute: k.rateLimitPerMinute,
    expires_at: iso(k.expiresAt),
    revoked_at: iso(k.revokedAt),
    last_used_at: iso(k.lastUsedAt),
    created_at: iso(k.createdAt)!,
  };
}
