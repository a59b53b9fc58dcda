import { describe, expect, it } from '@jest/globals';
import { mergeQuotas } from './tenants.service.js';

describe('mergeQuotas', () => {
  it('sets the quotas given as numbers and keeps the others', () => {
    expect(mergeQuotas({ max_queued_jobs: 5 }, { max_concurrent_jobs: 2 })).toEqual({ max_queued_jobs: 5, max_concurrent_jobs: 2 });
  });

  it('returns a quota to its plan value when given null', () => {
    expect(mergeQuotas({ max_queued_jobs: 5, max_concurrent_jobs: 2 }, { max_queued_jobs: null })).toEqual({ max_concurrent_jobs: 2 });
  });

  it('changes nothing without a patch, and never mutates its input', () => {
    const current = { max_queued_jobs: 5 };
    expect(mergeQuotas(current, undefined)).toEqual(current);
    mergeQuotas(current, { max_queued_jobs: 9 });
    expect(current).toEqual({ max_queued_jobs: 5 });
  });
});
