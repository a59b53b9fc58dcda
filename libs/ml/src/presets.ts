import * as tf from '@tensorflow/tfjs';
import type { PresetShape } from './sizing.js';
import type { ResolvedHyperparameters } from './types.js';

export type { PresetShape };

/**
 * The default models. Layers carry fixed names so that the same seed gives byte-identical
 * artifacts (TF.js numbers unnamed layers from a process-wide counter).
 * - classification / regression: a multilayer perceptron, ReLU hidden layers.
 * - text-classification (hashed n-grams, the default): TF-IDF vector of `buckets` → (a linear
 *   projection of `embedding_dim`, when asked: a weighted embedding bag) → (hidden layers) → softmax.
 * - text-classification (sequence, fine-tuned versions of old): token embedding → average pooling → … → softmax.
 */
export function buildPreset(shape: PresetShape, hp: ResolvedHyperparameters): tf.LayersModel {
  const text = shape.task === 'text-classification';
  const model = tf.sequential({ name: text ? 'text_classifier' : 'mlp' });
  if (text && shape.textModel === 'hashed-ngrams' && hp.embedding_dim !== undefined) {
    model.add(tf.layers.dense({ name: 'projection', units: hp.embedding_dim, useBias: false, batchInputShape: [null, shape.inputWidth] }));
  } else if (text && shape.textModel !== 'hashed-ngrams') {
    model.add(
      tf.layers.embedding({
        name: 'embedding',
        inputDim: shape.vocabularySize!,
        outputDim: hp.embedding_dim!,
        inputLength: shape.inputWidth,
        batchInputShape: [null, shape.inputWidth],
      }),
    );
    model.add(tf.layers.globalAveragePooling1d({ name: 'pooling' }));
  }
  (hp.hidden_units ?? []).forEach((units, i) => {
    model.add(
      tf.layers.dense({
        name: `hidden_${i + 1}`,
        units,
        activation: 'relu',
        kernelInitializer: 'heNormal',
        ...(model.layers.length === 0 ? { batchInputShape: [null, shape.inputWidth] } : {}),
      }),
    );
  });
  const first = model.layers.length === 0;
  model.add(
    tf.layers.dense({
      name: 'output',
      units: shape.outputWidth,
      activation: shape.task === 'regression' ? 'linear' : 'softmax',
      ...(first ? { batchInputShape: [null, shape.inputWidth] } : {}),
    }),
  );
  return model;
}
