import * as tf from '@tensorflow/tfjs';
import type { EncodedData } from './data/prepare.js';
import { classificationMetrics, regressionMetrics } from './metrics.js';
import type { ArtifactMetadata, Metrics } from './types.js';

const CHUNK = 1024;
/** Dense values per chunk of sparse rows (16 MB of float32). */
const SPARSE_CHUNK_VALUES = 1 << 22;

/** Rows per forward chunk: 1,024, or fewer when sparse rows are densified. */
export function chunkRows(data: EncodedData): number {
  return data.sparse ? Math.max(1, Math.min(CHUNK, Math.floor(SPARSE_CHUNK_VALUES / data.width))) : CHUNK;
}

/** Rows `start … start + rows` of `x`, or of the sparse rows written out dense, or image bytes scaled (into `out` when given). */
export function denseRows(data: EncodedData, start: number, rows: number, out?: Float32Array): Float32Array | Int32Array {
  if (data.x instanceof Uint8Array) {
    const bytes = data.x.subarray(start * data.width, (start + rows) * data.width);
    const scaled = out ? out.subarray(0, bytes.length) : new Float32Array(bytes.length);
    const scale = data.scale ?? 1;
    for (let i = 0; i < bytes.length; i++) scaled[i] = bytes[i] * scale;
    return scaled;
  }
  if (!data.sparse) return data.x.subarray(start * data.width, (start + rows) * data.width);
  const { offsets, indices, values } = data.sparse;
  const dense = out ? out.subarray(0, rows * data.width).fill(0) : new Float32Array(rows * data.width);
  for (let k = 0; k < rows; k++) {
    const base = k * data.width;
    for (let p = offsets[start + k]; p < offsets[start + k + 1]; p++) dense[base + indices[p]] = values[p];
  }
  return dense;
}

export function inputTensor(x: Float32Array | Int32Array, rows: number, width: number): tf.Tensor2D {
  return x instanceof Int32Array ? tf.tensor2d(x, [rows, width], 'int32') : tf.tensor2d(x, [rows, width], 'float32');
}

/** The model's outputs for every row, in chunks (inference mode), row-major. */
export function forward(model: tf.LayersModel, data: EncodedData): Float32Array {
  const outWidth = outputWidth(model);
  const out = new Float32Array(data.n * outWidth);
  const chunk = chunkRows(data);
  for (let start = 0; start < data.n; start += chunk) {
    const rows = Math.min(chunk, data.n - start);
    const values = tf.tidy(() => {
      const xs = inputTensor(denseRows(data, start, rows), rows, data.width);
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
  const target = pre.kind === 'tabular' || (pre.kind === 'foundation' && pre.input === 'text') ? pre.target : undefined;
  if (!target) return values;
  return values.map((v) => v * target.std + target.mean);
}

/** Evaluation metrics of encoded rows whose `y` is set. */
export function evaluateEncoded(model: tf.LayersModel, metadata: ArtifactMetadata, data: EncodedData): Metrics {
  const outputs = forward(model, data);
  if (metadata.labels) return classificationMetrics(outputs, data.y!, metadata.labels);
  return regressionMetrics(toLabelUnits(outputs, metadata), toLabelUnits(data.y!, metadata));
}
