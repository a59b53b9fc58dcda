import { ApiError, hashSecret, KEY_PREFIX_LENGTH, newSecretKey, SCOPES } from '@app/common';
import { ApiKeyRepository, AuditRepository, Database, type PageQuery, toPage } from '@app/db';
import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { KeyStore } from '../auth/key-store.js';
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

  async create(actor: Actor, tenantId: string, body: z.infer<typeof CreateApiKeyBody>) {
    const secret = newSecretKey('tenant');
    const key = await this.db.prisma.$transaction(async (tx) => {
      const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
      if (!tenant) throw ApiError.notFound('tenant', tenantId);
      const created = await this.keys.create(tx, tenantId, {
        name: body.name,
        prefix: secret.slice(0, KEY_PREFIX_LENGTH),
        hash: hashSecret(secret),
        scopes: body.scopes ? [...new Set(body.scopes)] : [...SCOPES],
        expiresAt: body.expires_at ? new Date(body.expires_at) : null,
        rateLimitPerMinute: body.rate_limit_per_minute ?? null,
      });
      await this.audit.record(tx, { ...actor, tenantId, action: 'api_key.created', targetType: 'api_key', targetId: created.id, data: { name: created.name, scopes: created.scopes } });
      return created;
    });
    return { ...apiKeyView(key), secret };
  }

  /** `checkTenant`: admins name the tenant in the path, and an unknown one is a 404, not an empty list. */
  async list(tenantId: string, query: PageQuery, checkTenant = false) {
    if (checkTenant && !(await this.db.prisma.tenant.findUnique({ where: { id: tenantId }, select: { id: true } }))) {
      throw ApiError.notFound('tenant', tenantId);
    }
    return toPage(await this.keys.list(tenantId, query), query.limit, apiKeyView);
  }

  async revoke(actor: Actor, tenantId: string, id: string) {
    const key = await this.db.prisma.$transaction(async (tx) => {
      const revoked = await this.keys.revoke(tx, tenantId, id);
      if (!revoked) throw ApiError.notFound('api key', id);
      await this.audit.record(tx, { ...actor, tenantId, action: 'api_key.revoked', targetType: 'api_key', targetId: id });
      return revoked;
    });
    await this.keyStore.invalidate({ hashes: [key.hash] });
    return apiKeyView(key);
  }
}
