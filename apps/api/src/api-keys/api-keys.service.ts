import { ApiError, effectiveQuotas, hashSecret, KEY_PREFIX_LENGTH, newSecretKey, SCOPES } from '@app/common';
import { ApiKeyRepository, AuditRepository, Database, type PageQuery, toPage } from '@app/db';
import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { KeyStore } from '../auth/key-store.js';
import type { TenantPrincipal } from '../auth/principal.js';
import type { Actor } from '../http/actor.js';
import { apiKeyView, type CreateApiKeyBody } from './api-keys.dto.js';

/** Tenant API keys, used by tenants for themselves and by admins for any tenant. */
@Injectable()
export class ApiKeysService {
  constructor(
    private readonly db: Database,
    private readonly keys: ApiKeyRepository,
    private readonly audit: AuditRepository,
    private readonly keyStore: KeyStore,
  ) {}

  /**
   * `caller`: the tenant key that asks (none for an admin). A key makes only keys no stronger than
   * itself: scopes it holds, an expiry no later than its own, a rate limit no looser; what is left
   * out is inherited from it.
   */
  async create(actor: Actor, tenantId: string, body: z.infer<typeof CreateApiKeyBody>, caller?: TenantPrincipal) {
    const grant = caller
      ? withinCaller(caller, body)
      : {
          scopes: body.scopes ?? [...SCOPES],
          expiresAt: body.expires_at ? new Date(body.expires_at) : null,
          rateLimit: body.rate_limit_per_minute ?? null,
        };
    const secret = newSecretKey('tenant');
    const hash = hashSecret(secret);
    const key = await this.db.prisma.$transaction(async (tx) => {
      // The tenant row's lock makes the count and the insert one step for concurrent creations.
      const [tenant] = await tx.$queryRaw<
        Array<{ plan: string; quotas: Record<string, unknown> }>
      >`SELECT plan, quotas FROM tenants WHERE id = ${tenantId} FOR UPDATE`;
      if (!tenant) throw ApiError.notFound('tenant', tenantId);
      const cap = effectiveQuotas(tenant.plan, tenant.quotas).max_api_keys;
      const active = await this.keys.countActive(tx, tenantId);
      if (active >= cap) {
        throw new ApiError(
          403,
          'quota_exceeded_error',
          'max_api_keys',
          `The tenant has ${active} active API keys, its max_api_keys; revoke one first`,
        );
      }
      const created = await this.keys.create(tx, tenantId, {
        name: body.name,
        prefix: secret.slice(0, KEY_PREFIX_LENGTH),
        hash,
        scopes: [...new Set(grant.scopes)],
        expiresAt: grant.expiresAt,
        rateLimitPerMinute: grant.rateLimit,
      });
      await this.audit.record(tx, {
        ...actor,
        tenantId,
        action: 'api_key.created',
        targetType: 'api_key',
        targetId: created.id,
        data: { name: created.name, scopes: created.scopes },
      });
      return created;
    });
    // A new key is random, so no instance can have it cached as unknown, unless someone guessed it first.
    await this.keyStore.invalidate({ hashes: [hash] }).catch(() => undefined);
    return { ...apiKeyView(key), secret };
  }

  /** `checkTenant`: admins name the tenant in the path, and an unknown one is a 404, not an empty list. */
  async list(tenantId: string, query: PageQuery, checkTenant = false) {
    if (checkTenant && !(await this.db.prisma.tenant.findUnique({ where: { id: tenantId }, select: { id: true } }))) {
      throw ApiError.notFound('tenant', tenantId);
    }
    return toPage(await this.keys.list(tenantId, query), query.limit, apiKeyView);
  }

  /** `caller`: the tenant key that asks (none for an admin); it cannot revoke a key with scopes it lacks. */
  async revoke(actor: Actor, tenantId: string, id: string, caller?: TenantPrincipal) {
    const key = await this.db.prisma.$transaction(async (tx) => {
      if (caller) {
        const target = await tx.apiKey.findFirst({ where: { tenantId, id }, select: { scopes: true } });
        if (!target) throw ApiError.notFound('api key', id);
        const lacking = target.scopes.filter((s) => !caller.scopes.has(s));
        if (lacking.length) throw scopeNotHeld(lacking, 'This key cannot revoke a key with scopes it does not hold', 'id');
      }
      const revoked = await this.keys.revoke(tx, tenantId, id);
      if (!revoked) throw ApiError.notFound('api key', id);
      await this.audit.record(tx, { ...actor, tenantId, action: 'api_key.revoked', targetType: 'api_key', targetId: id });
      return revoked;
    });
    await this.keyStore.invalidate({ hashes: [key.hash] });
    return apiKeyView(key);
  }
}

function scopeNotHeld(scopes: readonly string[], why: string, param: string): ApiError {
  return new ApiError(403, 'permission_error', 'scope_not_held', `${why}: ${scopes.join(', ')}`, param);
}

/** What a tenant key may grant: its own scopes at most, its own expiry at the latest, its own rate limit at the loosest. */
function withinCaller(caller: TenantPrincipal, body: z.infer<typeof CreateApiKeyBody>) {
  const scopes = body.scopes ?? [...caller.scopes];
  const lacking = scopes.filter((s) => !caller.scopes.has(s));
  if (lacking.length) throw scopeNotHeld(lacking, 'This key cannot grant scopes it does not hold', 'scopes');
  let expiresAt = body.expires_at ? new Date(body.expires_at) : null;
  if (caller.expiresAt !== null) {
    if (expiresAt === null) expiresAt = new Date(caller.expiresAt);
    else if (expiresAt.getTime() > caller.expiresAt) {
      throw new ApiError(
        403,
        'permission_error',
        'expires_after_caller',
        `This key expires at ${new Date(caller.expiresAt).toISOString()}; it cannot make a key that expires later`,
        'expires_at',
      );
    }
  }
  let rateLimit = body.rate_limit_per_minute ?? null;
  if (caller.keyRateLimit !== null) {
    if (rateLimit === null) rateLimit = caller.keyRateLimit;
    else if (rateLimit > caller.keyRateLimit) {
      throw new ApiError(
        403,
        'permission_error',
        'rate_limit_exceeds_caller',
        `This key is limited to ${caller.keyRateLimit} requests per minute; it cannot make a key with a higher limit`,
        'rate_limit_per_minute',
      );
    }
  }
  return { scopes, expiresAt, rateLimit };
}
