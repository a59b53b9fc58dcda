import * as tf from '@tensorflow/tfjs';
import type { EncodedData } from './data/prepare.js';
import { classificationMetrics, regressionMetrics } from './metrics.js';
import type { ArtifactMetadata, Metrics } from './types.js';

const CHUNK = 1024;

export function inputTensor(x: Float32Array | Int32Array, rows: number, width: number): tf.Tensor2D {
  return x instanceof Int32Array ? tf.tensor2d(x, [rows, width], 'int32') : tf.tensor2d(x, [rows, width], 'float32');
}

/** The model's outputs for every row, in chunks (inference mode), row-major. */
export function forward(model: tf.LayersModel, data: EncodedData): Float32Array {
  const outWidth = outputWidth(model);
  const out = new Float32Array(data.n * outWidth);
  for (let start = 0; start < data.n; start += CHUNK) {
    const rows = Math.min(CHUNK, data.n - start);
    const values = tf.tidy(() => {
      const xs = inputTensor(data.x.subarray(start * data.width, (start + rows) * data.width), rows, data.width);
      return (model.apply(xs, { training: false }) as tf.Tensor).dataSync();
    });
    out.set(values, start * outWidth);
  }
  return out;
}

export function outputWidth(model: tf.LayersModel): number {
  const shape = model.outputs[0].shape;
  return shape[shape.length - 1] ?? 1;
}

/** Standardized regression outputs back in the label's units. */
export function toLabelUnits(values: Float32Array, metadata: ArtifactMetadata): Float32Array {
  const pre = metadata.preprocessing;
  const target = pre.kind !== 'text' ? pre.target : undefined;
  if (!target) return values;
  return values.map((v) => v * target.std + target.mean);
}

/** Evaluation metrics of encoded rows whose `y` is set. */
export function evaluateEncoded(model: tf.LayersModel, metadata: ArtifactMetadata, data: EncodedData): Metrics {
  const outputs = forward(model, data);
  if (metadata.labels) return classificationMetrics(outputs, data.y!, metadata.labels);
  return regressionMetrics(toLabelUnits(outputs, metadata), toLabelUnits(data.y!, metadata));
}
