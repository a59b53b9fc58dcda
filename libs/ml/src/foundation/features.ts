/** The features a head sees from its frozen base: deterministic per input, computed once per (dataset, base). */
import { InputError } from './errors.js';
import { foundationInternals, type FoundationHandle } from './runtime.js';

/** Text documents are read as chunks of this many tokens (the encoder is cheaper and sharper on short spans). */
export const CHUNK_TOKENS = 128;
/** At most this many chunks per document, spread evenly from its start to its end. */
export const MAX_CHUNKS = 8;
/** Characters per chunk window: a little more than CHUNK_TOKENS tokens of English, cut at CHUNK_TOKENS once tokenized. */
const CHARS_PER_TOKEN = 5;

export interface TextFeatureOptions {
  chunkTokens?: number;
  maxChunks?: number;
}

/**
 * Per input, the base's features. Text: the document's tokens cut in chunks of CHUNK_TOKENS, up to MAX_CHUNKS of them
 * spread over the whole document, each encoded, then [mean over chunks (512) | max over chunks (512)]: 1024 floats, so
 * that a head sees all of a long document, not its first sentence. Images: the encoder's vector.
 */
export async function baseFeatures(
  handle: FoundationHandle,
  inputs: string[] | Uint8Array[],
  options: TextFeatureOptions = {},
): Promise<Float32Array[]> {
  const { text } = foundationInternals(handle);
  if (!text) return (await handle.embed(inputs)).vectors;
  const chunkTokens = options.chunkTokens ?? CHUNK_TOKENS;
  const maxChunks = options.maxChunks ?? MAX_CHUNKS;
  const chunks: number[][] = [];
  const owner: number[] = [];
  (inputs as unknown[]).forEach((input, i) => {
    if (typeof input !== 'string') throw new InputError(i, `input[${i}] is not a string`);
    if (input.trim() === '') throw new InputError(i, `input[${i}] is empty or only whitespace`);
    const size = chunkTokens * CHARS_PER_TOKEN;
    let found = 0;
    for (const window of spreadWindows(input, size, maxChunks)) {
      const ids = text.tokenizeAll(window)?.slice(0, chunkTokens);
      if (!ids || ids.length === 0) continue;
      chunks.push(ids);
      owner.push(i);
      found++;
    }
    // every picked window was whitespace: read the text's first non-blank span instead
    if (found === 0) {
      chunks.push(text.tokenizeAll(input.trim().slice(0, size))!.slice(0, chunkTokens));
      owner.push(i);
    }
  });
  const vectors = await text.encode(chunks);
  const width = vectors[0]?.length ?? 0;
  const out = inputs.map(() => {
    const f = new Float32Array(2 * width);
    f.fill(-Infinity, width);
    return f;
  });
  const counts = new Int32Array(inputs.length);
  vectors.forEach((v, k) => {
    const f = out[owner[k]];
    counts[owner[k]]++;
    for (let j = 0; j < width; j++) {
      f[j] += v[j];
      if (v[j] > f[width + j]) f[width + j] = v[j];
    }
  });
  out.forEach((f, i) => {
    for (let j = 0; j < width; j++) f[j] /= counts[i];
  });
  return out;
}

/**
 * Up to `max` windows of `size` characters, evenly spaced from the text's start to its end (all of them when the text
 * is short). Windows by characters, not tokens, so that the cost is bounded whatever the document's length.
 */
export function spreadWindows(text: string, size: number, max: number): string[] {
  const n = Math.max(1, Math.ceil(text.length / size));
  const picks =
    n <= max ? Array.from({ length: n }, (_, k) => k) : Array.from({ length: max }, (_, k) => Math.round((k * (n - 1)) / (max - 1)));
  return picks.map((k) => text.slice(k * size, (k + 1) * size));
}
