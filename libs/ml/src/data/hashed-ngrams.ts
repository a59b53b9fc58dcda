import { tokenize } from './text.js';

/**
 * Hashed word n-grams, TF-IDF weighted and L2-normalised: the features of the default text model.
 * Pure TypeScript (no TF.js) so that the API, the worker and other heads share one definition;
 * the hash is fixed (FNV-1a, 32 bits, over UTF-16 code units) so that a bucket means the same
 * thing in every process, on every machine, forever: an artifact records only its parameters.
 */

export { tokenize };

export interface HashedNgramOptions {
  /** Number of hash buckets (the feature width). */
  buckets: number;
  /** The longest n-gram: 1 = words only, 2 = words and pairs of adjacent words. */
  ngrams: number;
  /** Tokens read per text, from the start; the rest is ignored (bounds the work on huge inputs). */
  maxTokens?: number;
}

/** A sparse vector: bucket ids in increasing order, each once, with their weights. */
export interface SparseVector {
  indices: Int32Array;
  weights: Float32Array;
}

/** Tokens read per text when the caller sets no cap: ~500 KB of English. */
export const DEFAULT_MAX_TOKENS = 100_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
// Joins the words of an n-gram: never inside a token (tokens hold no whitespace).
const SEPARATOR = 0x20;

function fnvStep(hash: number, s: string): number {
  for (let i = 0; i < s.length; i++) hash = Math.imul(hash ^ s.charCodeAt(i), FNV_PRIME);
  return hash;
}

/** The FNV-1a hash (unsigned 32 bits) of the n-gram `tokens.join(' ')`. */
export function ngramHash(tokens: readonly string[]): number {
  let hash = FNV_OFFSET;
  tokens.forEach((t, i) => {
    if (i > 0) hash = Math.imul(hash ^ SEPARATOR, FNV_PRIME);
    hash = fnvStep(hash, t);
  });
  return hash >>> 0;
}

/**
 * Calls `visit(bucket, start, n)` for every n-gram of `tokens` (n from 1 to `ngrams`), in text
 * order; `start` is the index of its first token. One hash per n-gram, extended word by word.
 */
export function forEachNgram(
  tokens: readonly string[],
  options: HashedNgramOptions,
  visit: (bucket: number, start: number, n: number) => void,
): void {
  const { buckets, ngrams } = checkOptions(options);
  const count = Math.min(tokens.length, options.maxTokens ?? DEFAULT_MAX_TOKENS);
  for (let start = 0; start < count; start++) {
    let hash = FNV_OFFSET;
    for (let n = 1; n <= ngrams && start + n <= count; n++) {
      if (n > 1) hash = Math.imul(hash ^ SEPARATOR, FNV_PRIME);
      hash = fnvStep(hash, tokens[start + n - 1]);
      visit((hash >>> 0) % buckets, start, n);
    }
  }
}

/** The raw counts of the hashed n-grams of a list of tokens. */
export function hashedNgramCounts(tokens: readonly string[], options: HashedNgramOptions): SparseVector {
  const counts = new Map<number, number>();
  forEachNgram(tokens, options, (bucket) => counts.set(bucket, (counts.get(bucket) ?? 0) + 1));
  const indices = Int32Array.from(counts.keys()).sort();
  const weights = Float32Array.from(indices, (b) => counts.get(b)!);
  return { indices, weights };
}

/** The hashed n-gram counts of a text (tokenized as `tokenize` does). */
export function hashedNgrams(text: string, options: HashedNgramOptions): SparseVector {
  return hashedNgramCounts(tokenize(text), options);
}

/**
 * Smoothed inverse document frequencies, as scikit-learn's `TfidfTransformer(smooth_idf=True)`:
 * `ln((1 + documents) / (1 + df)) + 1`; a bucket no document has gets the largest value.
 */
export function fitIdf(documents: readonly SparseVector[], buckets: number): Float32Array {
  const df = new Float64Array(buckets);
  for (const doc of documents) for (const b of doc.indices) df[b]++;
  const n = documents.length;
  return Float32Array.from(df, (d) => Math.log((1 + n) / (1 + d)) + 1);
}

/** Sublinear TF (`1 + ln count`) × IDF, scaled to unit L2 norm; a vector with no n-gram stays empty. */
export function tfidf(counts: SparseVector, idf: Float32Array | null): SparseVector {
  const weights = new Float32Array(counts.weights.length);
  let norm = 0;
  for (let k = 0; k < weights.length; k++) {
    const c = counts.weights[k];
    const w = c > 0 ? (1 + Math.log(c)) * (idf ? idf[counts.indices[k]] : 1) : 0;
    weights[k] = w;
    norm += w * w;
  }
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm);
    for (let k = 0; k < weights.length; k++) weights[k] *= scale;
  }
  return { indices: counts.indices, weights };
}

function checkOptions(options: HashedNgramOptions): { buckets: number; ngrams: number } {
  const { buckets, ngrams } = options;
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 2 ** 31 - 1)
    throw new RangeError(`buckets must be a positive integer (got ${buckets})`);
  if (!Number.isInteger(ngrams) || ngrams < 1 || ngrams > 8) throw new RangeError(`ngrams must be an integer from 1 to 8 (got ${ngrams})`);
  return { buckets, ngrams };
}
