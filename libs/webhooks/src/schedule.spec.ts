import { describe, expect, it } from '@jest/globals';
import { DEFAULT_SCHEDULE, MAX_RETRY_AFTER_MS, nextDelayMs, parseSchedule, retryAfterMs } from './schedule.js';

describe('retry schedule', () => {
  it('defaults to 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(DEFAULT_SCHEDULE).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
  });

  it('parses WEBHOOK_RETRY_SCHEDULE in ms, s, m and h', () => {
    expect(parseSchedule('1s,2s,5s')).toEqual([1000, 2000, 5000]);
    expect(parseSchedule(' 250ms , 1.5s,2m ,1h')).toEqual([250, 1500, 120_000, 3_600_000]);
  });

  it('names the bad item', () => {
    expect(() => parseSchedule('1s,2x,5s')).toThrow(/item 2 "2x" is not a delay/);
    expect(() => parseSchedule('1s,,5s')).toThrow(/item 2 "" is not a delay/);
    expect(() => parseSchedule('-1s')).toThrow(/item 1 "-1s"/);
    expect(() => parseSchedule('5')).toThrow(/item 1 "5"/);
    expect(() => parseSchedule('')).toThrow(/empty/);
  });

  it('waits schedule[n-1] after n attempts, with ±10 % jitter, and stops when spent', () => {
    const schedule = parseSchedule('1s,10s');
    expect(nextDelayMs(schedule, 0)).toBe(0);
    expect(nextDelayMs(schedule, 1, () => 0.5)).toBe(1000);
    expect(nextDelayMs(schedule, 1, () => 0)).toBe(900);
    expect(nextDelayMs(schedule, 2, () => 0.999_999)).toBe(11_000);
    expect(nextDelayMs(schedule, 3)).toBeNull();
    for (let i = 0; i < 200; i++) {
      const d = nextDelayMs(DEFAULT_SCHEDULE, 2)!;
      expect(d).toBeGreaterThanOrEqual(270_000);
      expect(d).toBeLessThanOrEqual(330_000);
    }
    expect(nextDelayMs(DEFAULT_SCHEDULE, 7)).not.toBeNull();
    expect(nextDelayMs(DEFAULT_SCHEDULE, 8)).toBeNull();
  });

  it('reads Retry-After as seconds or an HTTP date, capped at 24 h', () => {
    const now = Date.parse('2025-06-01T12:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(['0'], now)).toBe(0);
    expect(retryAfterMs('Sun, 01 Jun 2025 12:01:30 GMT', now)).toBe(90_000);
    expect(retryAfterMs('Sunday, 01-Jun-25 12:00:10 GMT', now)).toBe(10_000);
    expect(retryAfterMs('Sat, 31 May 2025 12:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('999999999', now)).toBe(MAX_RETRY_AFTER_MS);
    for (const garbage of [undefined, null, '', '  ', '1.5', '-3', 'soon', '3 seconds', 'Sun, garbage']) {
      expect(retryAfterMs(garbage, now)).toBeNull();
    }
  });
});
