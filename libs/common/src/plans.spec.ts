import { describe, expect, it } from '@jest/globals';
import { effectiveQuotas, PLAN_QUOTAS } from './plans.js';

describe('effectiveQuotas', () => {
  it('is the plan’s quotas where the tenant overrides nothing', () => {
    expect(effectiveQuotas('pro', {})).toEqual(PLAN_QUOTAS.pro);
  });

  it('puts the tenant’s overrides on top, ignoring unknown names and non-numbers', () => {
    const q = effectiveQuotas('free', { max_concurrent_jobs: 7, gpus: 3, max_queued_jobs: 'many' });
    expect(q.max_concurrent_jobs).toBe(7);
    expect(q.max_queued_jobs).toBe(PLAN_QUOTAS.free.max_queued_jobs);
    expect(q).not.toHaveProperty('gpus');
  });

  it('falls back to the free plan for an unknown plan name', () => {
    expect(effectiveQuotas('legacy', {})).toEqual(PLAN_QUOTAS.free);
  });
});
