import type { Row } from '../types.js';

/** Collects row problems and stops after a few: one clear message beats ten thousand. */
export class Problems {
  readonly list: string[] = [];
  private more = 0;

  constructor(private readonly limit = 10) {}

  add(problem: string): void {
    if (this.list.length < this.limit) this.list.push(problem);
    else this.more++;
  }

  get any(): boolean {
    return this.list.length > 0;
  }

  get all(): string[] {
    return this.more > 0 ? [...this.list, `and ${this.more} more`] : this.list;
  }
}

/**
 * A feature value as a number, `null` when missing (null, undefined, empty string), or
 * `undefined` when it is not a number at all.
 */
export function numericValue(value: Row[string]): number | null | undefined {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const trimmed = value.trim();
  if (trimmed === '') return null;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : undefined;
}

export function labelValue(value: Row[string]): string | null {
  if (value === null || value === undefined) return null;
  const s = typeof value === 'string' ? value.trim() : String(value);
  return s === '' ? null : s;
}

/** Labels in a stable order: numerically when every label is a number, else by code unit. */
export function sortLabels(labels: Iterable<string>): string[] {
  const list = [...new Set(labels)];
  const numeric = list.every((l) => Number.isFinite(Number(l)));
  return numeric
    ? list.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0))
    : list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function describeValue(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s.length > 40 ? `'${s.slice(0, 37)}...'` : `'${s}'`;
}
