import type { TextPreprocessing } from '../types.js';

// Words (letters, digits, inner apostrophes) and single punctuation marks, after lower-casing.
const TOKEN = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu;

export const PAD_ID = 0;
export const OOV_ID = 1;
export const PAD_TOKEN = '<pad>';
export const OOV_TOKEN = '<oov>';
export const SEQUENCE_LENGTH_BOUNDS = [4, 256] as const;

export function tokenize(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}

/** The most frequent tokens first (ties by code unit), capped with room for padding and OOV ids. */
export function buildVocabulary(tokenLists: Iterable<string[]>, maxVocabulary: number): string[] {
  const counts = new Map<string, number>();
  for (const tokens of tokenLists) {
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return [PAD_TOKEN, OOV_TOKEN, ...sorted.slice(0, Math.max(0, maxVocabulary - 2)).map(([t]) => t)];
}

/** The 95th percentile of the token counts, within SEQUENCE_LENGTH_BOUNDS: long enough for most, cheap for all. */
export function chooseSequenceLength(lengths: number[]): number {
  if (lengths.length === 0) return SEQUENCE_LENGTH_BOUNDS[0];
  const sorted = [...lengths].sort((a, b) => a - b);
  const p95 = sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)];
  return Math.min(SEQUENCE_LENGTH_BOUNDS[1], Math.max(SEQUENCE_LENGTH_BOUNDS[0], p95));
}

export function vocabularyIndex(pre: TextPreprocessing): Map<string, number> {
  const index = new Map<string, number>();
  pre.vocabulary.forEach((token, id) => {
    if (id > OOV_ID) index.set(token, id);
  });
  return index;
}

/** Writes the ids of `tokens` at `out[offset…]`: cut after `length`, padded with PAD_ID. */
export function encodeTokens(tokens: string[], index: Map<string, number>, length: number, out: Int32Array, offset: number): void {
  const n = Math.min(tokens.length, length);
  for (let i = 0; i < n; i++) out[offset + i] = index.get(tokens[i]) ?? OOV_ID;
  out.fill(PAD_ID, offset + n, offset + length);
}
