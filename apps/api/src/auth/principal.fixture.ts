import { PLAN_QUOTAS } from '@app/common';
import type { TenantPrincipal } from './principal.js';

/** A tenant principal for unit tests of what reads one (the rate limiter, the usage meter). */
export const testPrincipal = (tenantId: string, perMinute: number, keyLimit: number | null = null): TenantPrincipal => ({
  kind: 'tenant',
  keyId: `key_${tenantId}`,
  keyHash: 'h',
  tenantId,
  tenantName: 't',
  tenantCreatedAt: new Date().toISOString(),
  tenantStatus: 'active',
  plan: 'free',
  quotas: { ...PLAN_QUOTAS.free, requests_per_minute: perMinute },
  scopes: new Set(),
  expiresAt: null,
  revoked: false,
  keyRateLimit: keyLimit,
});
