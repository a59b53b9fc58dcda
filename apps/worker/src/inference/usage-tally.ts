import type { UsageIncrement } from '@app/db';

/** The usage metric that counts sync prediction requests (usage_counters, per tenant and UTC day). */
export const SYNC_PREDICTIONS_METRIC = 'sync_predictions';

interface Tally {
  tenantId: string;
  day: string;
  seconds: number;
  requests: number;
}

/**
 * Usage of sync predictions, added up in memory and written in whole units. A request costs a
 * fraction of a batch's compute second: the fractions add up per tenant and day, whole seconds
 * are taken out at each flush and the remainder is carried to the next, so that no fraction is
 * rounded up per request (a million sub-millisecond predictions are not a million seconds).
 */
export class UsageTally {
  private readonly tallies = new Map<string, Tally>();

  /** `requestsMetric`: the usage metric its request counts go to (sync predictions, embeddings, tokens). */
  constructor(private readonly requestsMetric = SYNC_PREDICTIONS_METRIC) {}

  add(tenantId: string, seconds: number, requests = 1, day = new Date().toISOString().slice(0, 10)): void {
    const key = `${tenantId}|${day}`;
    let t = this.tallies.get(key);
    if (!t) this.tallies.set(key, (t = { tenantId, day, seconds: 0, requests: 0 }));
    t.seconds += seconds;
    t.requests += requests;
  }

  /**
   * What is ready to be written: whole compute seconds and every request counted. `final` (at
   * shutdown) also rounds up the remainders, as the job engine rounds up a job's seconds.
   * Whatever the write then fails on goes back with `restore`.
   */
  take(final = false): UsageIncrement[] {
    const out: UsageIncrement[] = [];
    for (const [key, t] of this.tallies) {
      // A float sum of fractions may fall a hair short of a whole second it really holds.
      const whole = final ? Math.ceil(t.seconds - 1e-9) : Math.floor(t.seconds + 1e-9);
      if (whole > 0) out.push({ tenantId: t.tenantId, day: t.day, metric: 'compute_seconds', value: whole });
      if (t.requests > 0) out.push({ tenantId: t.tenantId, day: t.day, metric: this.requestsMetric, value: t.requests });
      t.seconds = Math.max(0, t.seconds - whole);
      t.requests = 0;
      if (t.seconds === 0 || final) this.tallies.delete(key);
    }
    return out;
  }

  restore(increments: UsageIncrement[]): void {
    for (const i of increments) {
      if (i.metric === 'compute_seconds') this.add(i.tenantId, i.value, 0, i.day);
      else this.add(i.tenantId, 0, i.value, i.day);
    }
  }

  /** The compute seconds not written yet, per tenant (for tests and logs). */
  pendingSeconds(tenantId: string): number {
    let s = 0;
    for (const t of this.tallies.values()) if (t.tenantId === tenantId) s += t.seconds;
    return s;
  }
}
