import { UsageRepository, type UsageSnapshot } from '@app/db';
import { Injectable } from '@nestjs/common';
import { InvalidationBus } from '../infra/invalidation-bus.js';

/** A snapshot is reused for at most this long; every change that moves it is also pushed at once. */
const TTL_MS = 1_000;

/**
 * The usage that `GET /v1/me` shows, kept in memory per tenant so that the hot route does not
 * query PostgreSQL on every call. Whatever changes usage (uploads, deletions, jobs) publishes
 * `usageOf`, which drops the snapshot on every instance; the TTL only bounds what a missed
 * message could cost.
 */
@Injectable()
export class UsageCache {
  private readonly entries = new Map<string, { value: Promise<UsageSnapshot>; until: number }>();

  constructor(
    private readonly usage: UsageRepository,
    private readonly bus: InvalidationBus,
  ) {
    bus.listen(
      (change) => {
        if (change.usageOf) this.entries.delete(change.usageOf);
        if (change.tenantId) this.entries.delete(change.tenantId);
      },
      () => this.entries.clear(),
    );
  }

  get(tenantId: string): Promise<UsageSnapshot> {
    const now = Date.now();
    const hit = this.entries.get(tenantId);
    if (hit && hit.until > now) return hit.value;
    // Concurrent callers share one query.
    const value = this.usage.snapshot(tenantId);
    this.entries.set(tenantId, { value, until: now + TTL_MS });
    value.catch(() => this.entries.delete(tenantId));
    return value;
  }

  /** Tells every instance that a tenant's usage moved. */
  changed(tenantId: string): Promise<void> {
    return this.bus.publish({ usageOf: tenantId });
  }
}
