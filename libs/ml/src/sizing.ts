import type { ResolvedHyperparameters, Task } from './types.js';

/**
 * Sizes of a training known before anything runs, by arithmetic alone (no TF.js): the API checks
 * them at submission, the worker again with the data in hand.
 */

export interface PresetShape {
  task: Task;
  /** Features (tabular), hash buckets (hashed-n-gram text) or sequence length (sequence text). */
  inputWidth: number;
  /** Classes, or 1 for regression. */
  outputWidth: number;
  /** Text: the vocabulary, or the hash buckets. */
  vocabularySize?: number;
  /** Text: `hashed-ngrams` (the preset; the default) or `sequence` (an Embedding over token ids). */
  textModel?: 'hashed-ngrams' | 'sequence';
  /** Images: the size the images are resized to (known once the data is read; the API may pass the largest case). */
  image?: { width: number; height: number; channels: 1 | 3 };
}

/** The filters of each convolution block of the image preset: two blocks, three on images of 32 pixels and more. */
export function imageBlocks(image: { width: number; height: number }): number[] {
  return Math.min(image.width, image.height) >= 32 ? [32, 64, 64] : [32, 64];
}

/** The fewest entries a text vocabulary has: the padding and the out-of-vocabulary ids. */
export const MIN_VOCABULARY = 2;

/**
 * The preset's parameter count: for text the embedding or projection (vocabulary or buckets ×
 * embedding_dim, no bias) or, without embedding_dim, the buckets as the first width; then each
 * dense layer's kernel and bias.
 */
export function presetParameters(shape: PresetShape, hp: Pick<ResolvedHyperparameters, 'hidden_units' | 'embedding_dim'>): number {
  let width = shape.inputWidth;
  let total = 0;
  if (shape.task === 'image-classification' && shape.image) {
    let { width: w, height: h } = shape.image;
    let c: number = shape.image.channels;
    for (const filters of imageBlocks(shape.image)) {
      total += 9 * c * filters + filters;
      c = filters;
      w = Math.floor(w / 2);
      h = Math.floor(h / 2);
    }
    width = w * h * c;
  }
  if (shape.task === 'text-classification') {
    const vocabulary = shape.vocabularySize ?? MIN_VOCABULARY;
    if (hp.embedding_dim !== undefined) {
      total += vocabulary * hp.embedding_dim;
      width = hp.embedding_dim;
    } else width = vocabulary;
  }
  for (const units of [...(hp.hidden_units ?? []), shape.outputWidth]) {
    total += width * units + units;
    width = units;
  }
  return total;
}

/**
 * The least time one optimizer step takes on any backend. A step of the smallest preset is about a
 * hundred TF.js kernels (forward, backward, one update per weight), each dispatched from JS:
 * measured here 1.5 ms on wasm at batch size 1 and 2.5 ms at 32; this floor is 15 times lower.
 */
export const MIN_STEP_SECONDS = 1e-4;

export interface TrainingTimeBound {
  /** No training with these rows and hyperparameters finishes sooner, on any backend. */
  seconds: number;
  steps: number;
  /** Epochs it runs at least: all of them, or patience + 1 with early stopping. */
  epochs: number;
  trainRows: number;
}

/** A lower bound on a training's run time: the optimizer steps it must take, at MIN_STEP_SECONDS each. */
export function minimumTrainingTime(
  rows: number,
  hp: Pick<ResolvedHyperparameters, 'epochs' | 'batch_size' | 'validation_split' | 'early_stopping'>,
): TrainingTimeBound {
  // The split of prepareTraining: round(rows × split) held out, at least one row kept for training.
  const held = Math.min(Math.round(rows * hp.validation_split), Math.max(rows - 1, 0));
  const trainRows = rows - held;
  const epochs = hp.early_stopping ? Math.min(hp.epochs, hp.early_stopping.patience + 1) : hp.epochs;
  const steps = epochs * Math.ceil(trainRows / hp.batch_size);
  return { seconds: steps * MIN_STEP_SECONDS, steps, epochs, trainRows };
}
