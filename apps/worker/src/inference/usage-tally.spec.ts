import { describe, expect, it } from '@jest/globals';
import { SYNC_PREDICTIONS_METRIC, UsageTally } from './usage-tally.js';

const day = '2026-11-28';

describe('UsageTally', () => {
  it('writes whole compute seconds and carries the fractions to the next flush', () => {
    const tally = new UsageTally();
    for (let i = 0; i < 25; i++) tally.add('ten_a', 0.1, 1, day);
    expect(tally.take()).toEqual([
      { tenantId: 'ten_a', day, metric: 'compute_seconds', value: 2 },
      { tenantId: 'ten_a', day, metric: SYNC_PREDICTIONS_METRIC, value: 25 },
    ]);
    expect(tally.pendingSeconds('ten_a')).toBeCloseTo(0.5, 9);
    for (let i = 0; i < 5; i++) tally.add('ten_a', 0.1, 1, day);
    expect(tally.take()).toEqual([
      { tenantId: 'ten_a', day, metric: 'compute_seconds', value: 1 },
      { tenantId: 'ten_a', day, metric: SYNC_PREDICTIONS_METRIC, value: 5 },
    ]);
    expect(tally.take()).toEqual([]);
  });

  it('keeps tenants apart, rounds the remainders up at shutdown, and takes back a failed write', () => {
    const tally = new UsageTally();
    tally.add('ten_a', 0.3, 1, day);
    tally.add('ten_b', 1.2, 2, day);
    const first = tally.take();
    expect(first).toEqual([
      { tenantId: 'ten_a', day, metric: SYNC_PREDICTIONS_METRIC, value: 1 },
      { tenantId: 'ten_b', day, metric: 'compute_seconds', value: 1 },
      { tenantId: 'ten_b', day, metric: SYNC_PREDICTIONS_METRIC, value: 2 },
    ]);
    tally.restore(first);
    expect(tally.take(true)).toEqual([
      { tenantId: 'ten_a', day, metric: 'compute_seconds', value: 1 },
      { tenantId: 'ten_a', day, metric: SYNC_PREDICTIONS_METRIC, value: 1 },
      { tenantId: 'ten_b', day, metric: 'compute_seconds', value: 2 },
      { tenantId: 'ten_b', day, metric: SYNC_PREDICTIONS_METRIC, value: 2 },
    ]);
    expect(tally.take(true)).toEqual([]);
  });
});
