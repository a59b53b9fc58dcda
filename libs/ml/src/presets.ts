import * as tf from '@tensorflow/tfjs';
import type { PresetShape } from './sizing.js';
import type { ResolvedHyperparameters } from './types.js';

export type { PresetShape };

/**
 * The default models. Layers carry fixed names so that the same seed gives byte-identical
 * artifacts (TF.js numbers unnamed layers from a process-wide counter).
 * - classification / regression: a multilayer perceptron, ReLU hidden layers.
 * - text-classification: token embedding → average pooling → (hidden layers) → softmax, fastText-style.
 */
export function buildPreset(shape: PresetShape, hp: ResolvedHyperparameters): tf.LayersModel {
  const model = tf.sequential({ name: shape.task === 'text-classification' ? 'text_classifier' : 'mlp' });
  if (shape.task === 'text-classification') {
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
        ...(i === 0 && shape.task !== 'text-classification' ? { batchInputShape: [null, shape.inputWidth] } : {}),
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
