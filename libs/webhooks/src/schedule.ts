/**
 * When to try a failed delivery again. The first attempt goes at once; after the n-th failed attempt
 * the next waits `schedule[n-1]`, ±10 % jitter (so endpoints that failed together do not come back
 * together); when the schedule is spent the message has failed. The default is Svix's: 8 attempts
 * over about 28 hours.
 */
export type RetrySchedule = readonly number[];

export const DEFAULT_SCHEDULE_TEXT = '5s,5m,30m,2h,5h,10h,10h';

/** Each delay is multiplied by a uniform factor in [1 − JITTER, 1 + JITTER). */
export const JITTER = 0.1;

/** A `Retry-After` longer than this is taken as this. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const ITEM = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** `WEBHOOK_RETRY_SCHEDULE`: comma-separated delays such as `1s,2s,5s` (units ms, s, m, h), in ms. */
export function parseSchedule(text: string): RetrySchedule {
  const items = text.split(',').map((s) => s.trim());
  if (items.length === 1 && items[0] === '') throw new Error('retry schedule is empty: expected delays such as 5s,5m,30m');
  return Object.freeze(
    items.map((item, i) => {
      const m = ITEM.exec(item);
      if (!m) {
        throw new Error(
          `retry schedule item ${i + 1} ${JSON.stringify(item)} is not a delay: expected a number and a unit (ms, s, m or h), such as 5s or 30m`,
        );
      }
      return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
    }),
  );
}

export const DEFAULT_SCHEDULE: RetrySchedule = parseSchedule(DEFAULT_SCHEDULE_TEXT);

/**
 * The wait before the next attempt, after `attemptsMade` attempts (1 after the first failure); 0 before
 * the first; null when the schedule is spent (schedule.length + 1 attempts in all).
 */
export function nextDelayMs(schedule: RetrySchedule, attemptsMade: number, random: () => number = Math.random): number | null {
  if (attemptsMade <= 0) return 0;
  const base = schedule[attemptsMade - 1];
  if (base === undefined) return null;
  return Math.max(0, Math.round(base * (1 + (random() * 2 - 1) * JITTER)));
}

const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s/i;

/**
 * A `Retry-After` header (RFC 9110: delay-seconds or an HTTP-date) in ms from `now`, capped at
 * MAX_RETRY_AFTER_MS; a date in the past is 0; null when absent or unreadable.
 */
export function retryAfterMs(headerValue: string | readonly string[] | null | undefined, now: number | Date = Date.now()): number | null {
  const raw = typeof headerValue === 'string' ? headerValue : headerValue?.[0];
  const value = raw?.trim();
  if (!value) return null;
  let ms: number;
  if (/^\d+$/.test(value)) {
    ms = Number(value) * 1000;
  } else if (HTTP_DATE.test(value)) {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return null;
    ms = Math.max(0, at - (typeof now === 'number' ? now : now.getTime()));
  } else {
    return null;
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}
