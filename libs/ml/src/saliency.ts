import * as tf from '@tensorflow/tfjs';
import type { EncodedData } from './data/prepare.js';
import type { ImageEncoder } from './foundation/image-encoder.js';
import { imageHeadScaling } from './foundation/transfer.js';
import { denseRows } from './inference.js';
import type { FoundationImagePreprocessing, ImagePreprocessing, SaliencyMap } from './types.js';

/** Cells across the longer side of a saliency map (a 28×28 digit: 2×2-pixel cells; a 224×224 photo: 16×16). */
export const SALIENCY_GRID = 14;
const CNN_CHUNK = 64;
/** Images per backward pass through MobileNetV2 (its activations at 224×224 dominate the memory). */
const BACKBONE_CHUNK = 2;

/**
 * Gradient × input of the predicted class's probability for each pixel and channel, pooled by `poolSaliency`. A model
 * from scratch: through the whole network, on the resized image it reads.
 */
export function cnnSaliency(
  model: tf.LayersModel,
  pre: ImagePreprocessing,
  data: EncodedData,
  predicted: Int32Array,
): Array<{ saliency: SaliencyMap }> {
  const out: Array<{ saliency: SaliencyMap }> = [];
  for (let start = 0; start < data.n; start += CNN_CHUNK) {
    const rows = Math.min(CNN_CHUNK, data.n - start);
    const scores = tf.tidy(() => {
      const xs = tf.tensor2d(denseRows(data, start, rows) as Float32Array, [rows, data.width]);
      const gradient = tf.grad((input: tf.Tensor) =>
        selected(model.apply(input, { training: false }) as tf.Tensor2D, predicted.subarray(start, start + rows)),
      )(xs);
      return tf.mul(gradient, xs).dataSync() as Float32Array;
    });
    for (let k = 0; k < rows; k++)
      out.push({ saliency: poolSaliency(scores.subarray(k * data.width, (k + 1) * data.width), pre.width, pre.height, pre.channels) });
  }
  return out;
}

/**
 * A head on MobileNetV2: gradient × input through the backbone (a differentiable layers model) and the head, on the
 * 224×224 image the base reads. Frozen base: the head over the standardized features; fine-tuned: the trained top and
 * head over the frozen bottom's activations.
 */
export function headSaliency(
  encoder: ImageEncoder,
  head: tf.LayersModel,
  pre: FoundationImagePreprocessing,
  images: Uint8Array[],
  predicted: Int32Array,
): Array<{ saliency: SaliencyMap }> {
  const out: Array<{ saliency: SaliencyMap }> = [];
  const scaling = pre.fine_tuned ? null : imageHeadScaling(pre);
  const bottom = pre.fine_tuned ? encoder.bottom(pre.fine_tuned.cut) : encoder.featureModel;
  for (let start = 0; start < images.length; start += BACKBONE_CHUNK) {
    const batch = images.slice(start, start + BACKBONE_CHUNK);
    const [n, height, width, channels] = [batch.length, encoder.limits.height, encoder.limits.width, 3];
    const scores = tf.tidy(() => {
      const pixels = encoder.preprocess(batch, start);
      const gradient = tf.grad((input: tf.Tensor) => {
        let features = (bottom.apply(input, { training: false }) as tf.Tensor).reshape([n, -1]);
        if (scaling) features = tf.mul(tf.div(tf.sub(features, tf.tensor1d(scaling.mean)), tf.tensor1d(scaling.std)), scaling.scale);
        return selected(head.apply(features, { training: false }) as tf.Tensor2D, predicted.subarray(start, start + n));
      })(pixels);
      return tf.mul(gradient, pixels).dataSync() as Float32Array;
    });
    const size = height * width * channels;
    for (let k = 0; k < n; k++) out.push({ saliency: poolSaliency(scores.subarray(k * size, (k + 1) * size), width, height, channels) });
  }
  return out;
}

/** The sum over rows of each row's selected output: its gradient holds every row's own gradient. */
function selected(outputs: tf.Tensor2D, classes: Int32Array): tf.Scalar {
  return tf.sum(tf.mul(outputs, tf.oneHot(tf.tensor1d(classes, 'int32'), outputs.shape[1])));
}

/**
 * Per-pixel scores (row-major height × width × channels) onto a grid of SALIENCY_GRID cells across the longer side:
 * each cell the sum of |score| over its pixels and channels, divided by the largest cell (all 0 when nothing counts).
 */
export function poolSaliency(scores: Float32Array, width: number, height: number, channels: number): SaliencyMap {
  const cell = Math.max(1, Math.round(Math.max(width, height) / SALIENCY_GRID));
  const gw = Math.ceil(width / cell);
  const gh = Math.ceil(height / cell);
  const sums = new Float64Array(gw * gh);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += Math.abs(scores[(y * width + x) * channels + c]);
      sums[Math.floor(y / cell) * gw + Math.floor(x / cell)] += s;
    }
  }
  let max = 0;
  for (const s of sums) if (s > max) max = s;
  return { width: gw, height: gh, values: Array.from(sums, (s) => (max > 0 ? Math.round((s / max) * 1e4) / 1e4 : 0)) };
}
