import type { HashedNgramPreprocessing } from '../types.js';
import { DEFAULT_MAX_TOKENS, fitIdf, hashedNgramCounts, type HashedNgramOptions, type SparseVector } from './hashed-ngrams.js';
import { tokenize } from './text.js';

/** The default text model's preprocessing: fitted on the training split, applied to every row the model reads. */

export const HASHED_DEFAULTS = { buckets: 1 << 15, minBuckets: 1 << 10, ngrams: 1, maxTokens: DEFAULT_MAX_TOKENS } as const;
export const HASHED_LIMITS = { buckets: [16, 1 << 20], ngrams: [1, 3], maxTokens: [1, 1_000_000] } as const;

/** Rows as one sparse matrix (CSR): row k holds `indices/values[offsets[k] … offsets[k+1])`. */
export interface SparseRows {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export function hashedOptions(pre: HashedNgramPreprocessing): HashedNgramOptions {
  return { buckets: pre.buckets, ngrams: pre.ngrams, maxTokens: pre.max_tokens };
}

export function textCounts(raw: unknown, options: HashedNgramOptions): { tokens: string[]; counts: SparseVector } {
  const tokens = raw === undefined || raw === null ? [] : tokenize(String(raw));
  return { tokens, counts: hashedNgramCounts(tokens, options) };
}

export function fitHashedText(field: string, counts: SparseVector[], options: Required<HashedNgramOptions>): HashedNgramPreprocessing {
  const idf = fitIdf(counts, options.buckets);
  return {
    kind: 'hashed-ngrams',
    text_field: field,
    tokenizer: 'lowercase-words-punctuation',
    hash: 'fnv1a32-mod',
    buckets: options.buckets,
    ngrams: options.ngrams,
    max_tokens: options.maxTokens,
    weighting: 'sublinear-tf-idf-l2',
    idf: Buffer.from(idf.buffer, idf.byteOffset, idf.byteLength).toString('base64'),
  };
}

/** The IDF vector of a preprocessing (little-endian float32, as written). */
export function decodeIdf(pre: HashedNgramPreprocessing): Float32Array {
  const bytes = Buffer.from(pre.idf, 'base64');
  const out = new Float32Array(bytes.byteLength >>> 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Problems with an artifact's hashed-n-gram preprocessing (an upload may carry anything). */
export function hashedPreprocessingProblems(pre: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const intIn = (key: string, [lo, hi]: readonly [number, number]) => {
    const v = pre[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
      problems.push(`preprocessing.${key} must be an integer from ${lo} to ${hi}`);
  };
  intIn('buckets', HASHED_LIMITS.buckets);
  intIn('ngrams', HASHED_LIMITS.ngrams);
  intIn('max_tokens', HASHED_LIMITS.maxTokens);
  if (typeof pre.text_field !== 'string' || pre.text_field === '') problems.push('preprocessing.text_field must name the text column');
  if (pre.tokenizer !== 'lowercase-words-punctuation') problems.push("preprocessing.tokenizer must be 'lowercase-words-punctuation'");
  if (pre.hash !== 'fnv1a32-mod') problems.push("preprocessing.hash must be 'fnv1a32-mod'");
  if (pre.weighting !== 'sublinear-tf-idf-l2') problems.push("preprocessing.weighting must be 'sublinear-tf-idf-l2'");
  if (problems.length > 0) return problems;
  if (typeof pre.idf !== 'string' || Buffer.byteLength(pre.idf, 'base64') !== (pre.buckets as number) * 4) {
    return [`preprocessing.idf must be base64 of ${pre.buckets} float32 values`];
  }
  const idf = decodeIdf(pre as unknown as HashedNgramPreprocessing);
  if (idf.length !== pre.buckets || !idf.every((v) => Number.isFinite(v) && v >= 0))
    problems.push('preprocessing.idf must hold one finite, non-negative value per bucket');
  return problems;
}

/** Appends TF-IDF rows to a growing CSR matrix. */
export class SparseRowsBuilder {
  private readonly offsets: number[] = [0];
  private readonly indices: Int32Array[] = [];
  private readonly values: Float32Array[] = [];
  private size = 0;

  push(vector: SparseVector): void {
    this.indices.push(vector.indices);
    this.values.push(vector.weights);
    this.size += vector.indices.length;
    this.offsets.push(this.size);
  }

  build(): SparseRows {
    const indices = new Int32Array(this.size);
    const values = new Float32Array(this.size);
    let at = 0;
    this.indices.forEach((ids, k) => {
      indices.set(ids, at);
      values.set(this.values[k], at);
      at += ids.length;
    });
    return { offsets: Int32Array.from(this.offsets), indices, values };
  }
}
