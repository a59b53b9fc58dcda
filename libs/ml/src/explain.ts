import * as tf from '@tensorflow/tfjs';
import { forEachNgram } from './data/hashed-ngrams.js';
import { hashedOptions } from './data/hashed-text.js';
import type { EncodedData } from './data/prepare.js';
import { chunkRows, denseRows, inputTensor } from './inference.js';
import type { ArtifactMetadata, Explanation, HashedNgramPreprocessing } from './types.js';

const CHUNK = 256;

/**
 * Gradient × input of the predicted output: for a classifier the probability of the predicted
 * class, for a regressor the value (in the label's units). Tabular: one score per feature,
 * measured from the training mean (standardized inputs are 0 there). Text: one score per
 * token, the gradient at its embedding times the embedding, summed over the embedding; for
 * hashed n-grams, each n-gram's gradient × TF-IDF weight shared among its occurrences and, within
 * one, equally among its words (a word's score is its part of the n-grams it is in).
 */
export function explain(model: tf.LayersModel, metadata: ArtifactMetadata, data: EncodedData, predicted: Int32Array | null): Explanation[] {
  const out: Explanation[] = [];
  const pre = metadata.preprocessing;
  const scale = pre.kind === 'tabular' && pre.target ? pre.target.std : 1;
  const chunk = data.sparse ? chunkRows(data) : CHUNK;
  for (let start = 0; start < data.n; start += chunk) {
    const rows = Math.min(chunk, data.n - start);
    const x = denseRows(data, start, rows);
    const selected = predicted ? predicted.subarray(start, start + rows) : null;
    const scores =
      pre.kind === 'text'
        ? textScores(model, x as Int32Array, rows, data.width, selected)
        : tabularScores(model, x as Float32Array, rows, data.width, selected);
    for (let k = 0; k < rows; k++) {
      const row = scores.subarray(k * data.width, (k + 1) * data.width);
      if (pre.kind === 'hashed-ngrams') {
        out.push(ngramTokenScores(pre, data.tokens![start + k], row));
      } else if (pre.kind === 'tabular') {
        out.push(Object.fromEntries(pre.features.map((f, j) => [f, row[j] * scale])));
      } else {
        const tokens = data.tokens![start + k];
        out.push(tokens.map((token, j) => ({ token, score: row[j] })));
      }
    }
  }
  return out;
}

/** Each token's share of the scores of the hashed n-grams that contain it, in text order. */
function ngramTokenScores(
  pre: HashedNgramPreprocessing,
  tokens: string[],
  bucketScores: Float32Array,
): Array<{ token: string; score: number }> {
  const options = hashedOptions(pre);
  const occurrences = new Map<number, number>();
  forEachNgram(tokens, options, (bucket) => occurrences.set(bucket, (occurrences.get(bucket) ?? 0) + 1));
  const scores = new Float64Array(tokens.length);
  forEachNgram(tokens, options, (bucket, start, n) => {
    const share = bucketScores[bucket] / occurrences.get(bucket)! / n;
    for (let j = start; j < start + n; j++) scores[j] += share;
  });
  return tokens.map((token, j) => ({ token, score: scores[j] }));
}

/** The sum over rows of each row's selected output: its gradient holds every row's own gradient. */
function selectedOutput(model: tf.LayersModel, input: tf.Tensor, selected: Int32Array | null): tf.Scalar {
  const outputs = model.apply(input, { training: false }) as tf.Tensor2D;
  if (!selected) return tf.sum(outputs);
  const mask = tf.oneHot(tf.tensor1d(selected, 'int32'), outputs.shape[1]);
  return tf.sum(tf.mul(outputs, mask));
}

function tabularScores(model: tf.LayersModel, x: Float32Array, rows: number, width: number, selected: Int32Array | null): Float32Array {
  return tf.tidy(() => {
    const xs = inputTensor(x, rows, width);
    const gradient = tf.grad((input: tf.Tensor) => selectedOutput(model, input, selected))(xs);
    return tf.mul(gradient, xs).dataSync() as Float32Array;
  });
}

function textScores(model: tf.LayersModel, ids: Int32Array, rows: number, width: number, selected: Int32Array | null): Float32Array {
  const embedding = model.layers.find((l) => l.getClassName() === 'Embedding');
  if (!embedding) throw new Error('A text model without an Embedding layer cannot be explained');
  return tf.tidy(() => {
    const xs = inputTensor(ids, rows, width);
    const vectors = embedding.apply(xs) as tf.Tensor3D;
    // The embedding layer hands over the differentiated tensor instead of looking it up, for one pass.
    const original = Object.getOwnPropertyDescriptor(embedding, 'call');
    let current: tf.Tensor | null = null;
    // A clone: inference-mode execution disposes each layer's output once it is consumed.
    (embedding as unknown as { call: () => tf.Tensor }).call = () => tf.clone(current!);
    try {
      const gradient = tf.grad((e: tf.Tensor) => {
        current = e;
        return selectedOutput(model, xs, selected);
      })(vectors);
      return tf.sum(tf.mul(gradient, vectors), -1).dataSync() as Float32Array;
    } finally {
      if (original) Object.defineProperty(embedding, 'call', original);
      else delete (embedding as unknown as { call?: unknown }).call;
    }
  });
}
