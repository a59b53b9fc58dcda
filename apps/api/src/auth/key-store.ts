import { effectiveQuotas, hashSecret, keyKindOf } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { Inject, Injectable } from '@nestjs/common';
import { keyLookups } from '../health/metrics.js';
import { type Invalidation, InvalidationBus } from '../infra/invalidation-bus.js';
import type { Principal } from './principal.js';

interface Entry {
  principal: Principal;
  until: number;
}

/** What the caches know of a secret without a lookup: its principal, that it is unknown (null), or nothing. */
export interface Peek {
  hash: string;
  known: Principal | null | undefined;
}

const MAX_ENTRIES = 100_000;
/** Unknown keys are remembered briefly and in a bounded map, so that random keys cannot push out the valid ones. */
const NEGATIVE_TTL_MS = 5_000;
const MAX_NEGATIVES = 10_000;
const TOUCH_EVERY_MS = 60_000;

/**
 * Resolves a presented secret to a principal without a database read per request: validated keys
 * stay in memory for KEY_CACHE_TTL_MS, and revocations, suspensions and quota edits are pushed to
 * every instance over Redis pub/sub. If the subscription drops, the cache is emptied when it
 * returns, since messages may have been missed meanwhile.
 */
@Injectable()
export class KeyStore {
  private readonly cache = new Map<string, Entry>();
  private readonly unknown = new Map<string, number>();
  private readonly touched = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly bus: InvalidationBus,
  ) {
    bus.listen(
      (change) => this.apply(change),
      () => {
        this.cache.clear();
        this.unknown.clear();
      },
    );
  }

  /** Drops cached keys here and on every other instance. */
  invalidate(change: Pick<Invalidation, 'hashes' | 'tenantId'>): Promise<void> {
    return this.bus.publish(change);
  }

  /** The hot path, with no I/O: a malformed secret is unknown at once; a cached one is answered from memory. */
  peek(secret: string): Peek {
    if (!keyKindOf(secret) || secret.length > 200) return { hash: '', known: null };
    const hash = hashSecret(secret);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) {
      keyLookups.inc({ source: 'cache' });
      return { hash, known: hit.principal };
    }
    const unknownUntil = this.unknown.get(hash);
    if (unknownUntil !== undefined && unknownUntil > now) {
      keyLookups.inc({ source: 'cache' });
      return { hash, known: null };
    }
    return { hash, known: undefined };
  }

  /** A database lookup of a secret that `peek` did not know. */
  async load(secret: string, hash: string): Promise<Principal | null> {
    keyLookups.inc({ source: 'database' });
    const principal = keyKindOf(secret) === 'tenant' ? await this.loadTenantKey(hash) : await this.loadAdminKey(hash);
    const now = Date.now();
    if (principal) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
      this.cache.set(hash, { principal, until: now + this.config.keyCacheTtlMs });
    } else {
      // Oldest first: a Map iterates in insertion order.
      if (this.unknown.size >= MAX_NEGATIVES) this.unknown.delete(this.unknown.keys().next().value!);
      this.unknown.set(hash, now + NEGATIVE_TTL_MS);
    }
    return principal;
  }

  async resolve(secret: string): Promise<Principal | null> {
    const { hash, known } = this.peek(secret);
    return known !== undefined ? known : this.load(secret, hash);
  }

  /** Records last_used_at at most once a minute per key per instance, off the request's path. */
  touch(principal: Principal): void {
    const now = Date.now();
    if ((this.touched.get(principal.keyId) ?? 0) > now - TOUCH_EVERY_MS) return;
    this.touched.set(principal.keyId, now);
    const table = principal.kind === 'tenant' ? 'api_keys' : 'admin_keys';
    this.db.pool.query(`UPDATE ${table} SET last_used_at = now() WHERE id = $1`, [principal.keyId]).catch(() => {
      this.touched.delete(principal.keyId);
    });
  }

  private apply(change: Invalidation): void {
    for (const hash of change.hashes ?? []) {
      this.cache.delete(hash);
      this.unknown.delete(hash);
    }
    if (change.tenantId) {
      for (const [hash, entry] of this.cache) {
        if (entry.principal.kind === 'tenant' && entry.principal.tenantId === change.tenantId) this.cache.delete(hash);
      }
    }
  }

  private async loadTenantKey(hash: string): Promise<Principal | null> {
    const { rows } = await this.db.pool.query<{
      id: string;
      tenant_id: string;
      scopes: string[];
      expires_at: Date | null;
      revoked_at: Date | null;
      rate_limit_per_minute: number | null;
      status: 'active' | 'suspended';
      tenant_name: string;
      tenant_created_at: Date;
      plan: string;
      quotas: Record<string, unknown>;
    }>(
      `SELECT k.id, k.tenant_id, k.scopes, k.expires_at, k.revoked_at, k.rate_limit_per_minute, t.status, t.name AS tenant_name, t.created_at AS tenant_created_at, t.plan, t.quotas
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = $1`,
      [hash],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      kind: 'tenant',
      keyId: row.id,
      keyHash: hash,
      tenantId: row.tenant_id,
      tenantName: row.tenant_name,
      tenantCreatedAt: row.tenant_created_at.toISOString(),
      tenantStatus: row.status,
      plan: row.plan,
      quotas: effectiveQuotas(row.plan, row.quotas),
      scopes: new Set(row.scopes),
      expiresAt: row.expires_at ? row.expires_at.getTime() : null,
      revoked: row.revoked_at !== null,
      keyRateLimit: row.rate_limit_per_minute,
    };
  }

  private async loadAdminKey(hash: string): Promise<Principal | null> {
    const { rows } = await this.db.pool.query<{ id: string; revoked_at: Date | null }>(
      'SELECT id, revoked_at FROM admin_keys WHERE hash = $1',
      [hash],
    );
    const row = rows[0];
    return row ? { kind: 'admin', keyId: row.id, keyHash: hash, revoked: row.revoked_at !== null } : null;
  }
}
