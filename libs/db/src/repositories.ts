import { newId } from '@app/common';
import type { Database } from './database.js';
import type { AdminKey, ApiKey, AuditLog, Tenant } from './generated/client.js';
import { Prisma } from './generated/client.js';
import { pageArgs, type PageQuery } from './pagination.js';

export type { AdminKey, ApiKey, AuditLog, Tenant };
export { Prisma };
export type Tx = Prisma.TransactionClient;

/** Tenants are the root of tenancy: only admins reach them by id. */
export class TenantRepository {
  constructor(private readonly db: Database) {}

  create(tx: Tx, data: { name: string; plan: string; quotas: Record<string, number> }): Promise<Tenant> {
    return tx.tenant.create({ data: { id: newId('ten'), ...data, gauges: { create: {} } } });
  }

  get(id: string): Promise<Tenant | null> {
    return this.db.prisma.tenant.findUnique({ where: { id } });
  }

  async list(query: PageQuery & { status?: 'active' | 'suspended' }): Promise<Tenant[]> {
    const cursor = query.starting_after ? await this.get(query.starting_after) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.tenant.findMany({ ...args, where: { ...args.where, ...(query.status ? { status: query.status } : {}) } });
  }

  update(tx: Tx, id: string, data: Prisma.TenantUpdateInput): Promise<Tenant> {
    return tx.tenant.update({ where: { id }, data });
  }

  /** Erases the tenant and, by cascade, everything it owns. */
  async delete(tx: Tx, id: string): Promise<void> {
    await tx.idempotencyRecord.deleteMany({ where: { tenantId: id } });
    await tx.tenant.delete({ where: { id } });
  }
}

export class ApiKeyRepository {
  constructor(private readonly db: Database) {}

  create(
    tx: Tx,
    tenantId: string,
    data: { name: string; prefix: string; hash: string; scopes: string[]; expiresAt: Date | null; rateLimitPerMinute: number | null },
  ): Promise<ApiKey> {
    return tx.apiKey.create({ data: { id: newId('key'), tenantId, ...data } });
  }

  get(tenantId: string, id: string): Promise<ApiKey | null> {
    return this.db.prisma.apiKey.findFirst({ where: { tenantId, id } });
  }

  async list(tenantId: string, query: PageQuery): Promise<ApiKey[]> {
    const cursor = query.starting_after ? await this.get(tenantId, query.starting_after) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.apiKey.findMany({ ...args, where: { ...args.where, tenantId } });
  }

  /**
   * Marks the key revoked (idempotent: an already revoked key keeps its first revocation time).
   * One guarded UPDATE, then a read: a key deleted between a read and an update (its tenant deleted
   * meanwhile) is simply not found, where `update` by id failed as a 500 (found by the fault suite's fuzz pass).
   */
  async revoke(tx: Tx, tenantId: string, id: string): Promise<ApiKey | null> {
    await tx.apiKey.updateMany({ where: { tenantId, id, revokedAt: null }, data: { revokedAt: new Date() } });
    return tx.apiKey.findFirst({ where: { tenantId, id } });
  }

  /** Keys that still work (not revoked, not expired): what max_api_keys counts. */
  countActive(tx: Tx, tenantId: string): Promise<number> {
    return tx.apiKey.count({ where: { tenantId, revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] } });
  }

  /** Every unrevoked key hash of a tenant, to drop from the API instances' caches. */
  async hashesOf(tx: Tx, tenantId: string): Promise<string[]> {
    const rows = await tx.apiKey.findMany({ where: { tenantId }, select: { hash: true } });
    return rows.map((r) => r.hash);
  }
}

export class AdminKeyRepository {
  constructor(private readonly db: Database) {}

  count(): Promise<number> {
    return this.db.prisma.adminKey.count({ where: { revokedAt: null } });
  }

  findByHash(hash: string): Promise<AdminKey | null> {
    return this.db.prisma.adminKey.findUnique({ where: { hash } });
  }

  create(tx: Tx, data: { name: string; prefix: string; hash: string }): Promise<AdminKey> {
    return tx.adminKey.create({ data: { id: newId('adk'), ...data } });
  }
}

export interface AuditEntry {
  actorType: 'admin' | 'tenant' | 'system';
  actorKeyId: string;
  tenantId?: string | null;
  action: string;
  targetType: string;
  targetId: string;
  data?: Prisma.InputJsonValue;
}

export class AuditRepository {
  constructor(private readonly db: Database) {}

  /** Written inside the transaction of the change it records, so neither exists without the other. */
  async record(tx: Tx, entry: AuditEntry): Promise<void> {
    await tx.auditLog.create({ data: { id: newId('aud'), ...entry, tenantId: entry.tenantId ?? null, data: entry.data ?? {} } });
  }

  async list(query: PageQuery & { tenantId?: string; action?: string; actorKeyId?: string }): Promise<AuditLog[]> {
    const cursor = query.starting_after ? await this.db.prisma.auditLog.findUnique({ where: { id: query.starting_after } }) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.auditLog.findMany({
      ...args,
      where: {
        ...args.where,
        ...(query.tenantId ? { tenantId: query.tenantId } : {}),
        ...(query.action ? { action: query.action } : {}),
        ...(query.actorKeyId ? { actorKeyId: query.actorKeyId } : {}),
      },
    });
  }
}
