import { effectiveQuotas, hashSecret, keyKindOf } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { redisKey } from '@app/queue';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { keyLookups } from '../health/metrics.js';
import { REDIS, REDIS_SUBSCRIBER } from '../infra/infra.module.js';
import type { Principal } from './principal.js';

interface Entry {
  principal: Principal | null;
  until: number;
}

/** What changed, published to every API instance. */
export interface Invalidation {
  hashes?: string[];
  tenantId?: string;
}

const MAX_ENTRIES = 100_000;
const NEGATIVE_TTL_MS = 2_000;
const TOUCH_EVERY_MS = 60_000;

/**
 * Resolves a presented secret to a principal without a database read per request: validated keys
 * stay in memory for KEY_CACHE_TTL_MS, and revocations, suspensions and quota edits are pushed to
 * every instance over Redis pub/sub. If the subscription drops, the cache is emptied when it
 * returns, since messages may have been missed meanwhile.
 */
@Injectable()
export class KeyStore implements OnModuleInit {
  private readonly logger = new Logger('auth');
  private readonly cache = new Map<string, Entry>();
  private readonly touched = new Map<string, number>();
  private readonly channel: string;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: Redis,
  ) {
    this.channel = redisKey(config, 'auth', 'invalidate');
  }

  async onModuleInit(): Promise<void> {
    let connectedBefore = false;
    this.subscriber.on('ready', () => {
      if (connectedBefore) this.cache.clear();
      connectedBefore = true;
    });
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.apply(JSON.parse(message) as Invalidation);
    });
    await this.subscriber.subscribe(this.channel).catch((err: Error) => this.logger.warn(`cannot subscribe yet: ${err.message}`));
  }

  /** Drops cached keys here and on every other instance. */
  async invalidate(change: Invalidation): Promise<void> {
    this.apply(change);
    await this.redis.publish(this.channel, JSON.stringify(change)).catch((err: Error) => {
      // Other instances fall back to the cache TTL; say so, since revocation is then slower.
      this.logger.error(`could not publish a key invalidation: ${err.message}`);
    });
  }

  async resolve(secret: string): Promise<Principal | null> {
    const kind = keyKindOf(secret);
    if (!kind || secret.length > 200) return null;
    const hash = hashSecret(secret);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) {
      keyLookups.inc({ source: 'cache' });
      return hit.principal;
    }
    keyLookups.inc({ source: 'database' });
    const principal = kind === 'tenant' ? await this.loadTenantKey(hash) : await this.loadAdminKey(hash);
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(hash, { principal, until: now + (principal ? this.config.keyCacheTtlMs : NEGATIVE_TTL_MS) });
    return principal;
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
    for (const hash of change.hashes ?? []) this.cache.delete(hash);
    if (change.tenantId) {
      for (const [hash, entry] of this.cache) {
        if (entry.principal?.kind === 'tenant' && entry.principal.tenantId === change.tenantId) this.cache.delete(hash);
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
