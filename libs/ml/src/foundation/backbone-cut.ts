import * as tf from '@tensorflow/tfjs';
import { MlError } from '../errors.js';
import { throwIfAborted } from '../training-loop.js';
import type { ImageEncoder } from './image-encoder.js';

/** Where fine-tuning cuts the backbone: below `cut` frozen (run by serving from the base), above it trained. */
export interface CutPlan {
  cut: string;
  cutShape: number[];
  /** The layers above the cut, in topological order, up to the feature layer. */
  top: tf.layers.Layer[];
  /** Layers with weights among them (at least the N asked for: a cut never splits a residual block). */
  trainable: number;
}

const hasWeights = (l: tf.layers.Layer) => l.weights.length > 0;
const inboundNames = (l: tf.layers.Layer) => (l.inboundNodes[0]?.inboundLayers ?? []).map((x) => x.name);

/** The backbone's layers with weights (convolutions, batch normalizations): what trainable_base_layers counts. */
export function weightedLayerCount(layers: tf.layers.Layer[]): number {
  return layers.filter(hasWeights).length;
}

/**
 * The highest cut below the top `n` layers with weights where a single tensor crosses (a residual connection spanning
 * the cut would need two inputs): the layers above it train. Refuses `n` beyond the backbone's count.
 */
export function planCut(layers: tf.layers.Layer[], n: number, baseId: string): CutPlan {
  const total = weightedLayerCount(layers);
  if (n > total) throw new MlError('invalid_hyperparameters', `trainable_base_layers is ${n}; ${baseId} has ${total} layers with weights`);
  let seen = 0;
  let t = layers.length;
  while (seen < n) if (hasWeights(layers[--t])) seen++;
  const index = new Map(layers.map((l, i) => [l.name, i]));
  for (let p = t - 1; p >= 0; p--) {
    const crossing = new Set<number>();
    for (let i = p + 1; i < layers.length; i++)
      for (const name of inboundNames(layers[i])) if (index.get(name)! <= p) crossing.add(index.get(name)!);
    if (crossing.size === 1 && crossing.has(p)) {
      const top = layers.slice(p + 1);
      const shape = (layers[p].outputShape as number[]).slice(1);
      return { cut: layers[p].name, cutShape: shape, top, trainable: weightedLayerCount(top) };
    }
  }
  throw new MlError('invalid_hyperparameters', `trainable_base_layers is ${n}: ${baseId} has no cut below that many layers`);
}

/**
 * A trainable copy of the layers above the cut (fresh layers from their configs, the base's weights copied: training
 * never touches the shared base), reading the flat activations of the cut, with the dense head on top.
 */
export function buildTopAndHead(plan: CutPlan, classes: number, hiddenUnits: number[]): tf.LayersModel {
  const width = plan.cutShape.reduce((a, b) => a * b, 1);
  const input = tf.input({ shape: [width], name: 'cut_activations' });
  const tensors = new Map<string, tf.SymbolicTensor>();
  tensors.set(plan.cut, tf.layers.reshape({ name: 'cut_shape', targetShape: plan.cutShape }).apply(input) as tf.SymbolicTensor);
  const classMap = tf.serialization.SerializationMap.getMap().classNameMap;
  const copies: Array<[tf.layers.Layer, tf.layers.Layer]> = [];
  let last: tf.SymbolicTensor | null = null;
  for (const layer of plan.top) {
    const [cls, fromConfig] = classMap[layer.getClassName()];
    const copy = fromConfig(cls, layer.getConfig() as tf.serialization.ConfigDict) as unknown as tf.layers.Layer;
    const inputs = inboundNames(layer).map((name) => tensors.get(name)!);
    last = copy.apply(inputs.length === 1 ? inputs[0] : inputs) as tf.SymbolicTensor;
    tensors.set(layer.name, last);
    copies.push([layer, copy]);
  }
  for (const [layer, copy] of copies) if (hasWeights(layer)) copy.setWeights(layer.getWeights());
  let x = last!;
  hiddenUnits.forEach((units, i) => {
    x = tf.layers
      .dense({ name: `hidden_${i + 1}`, units, activation: 'relu', kernelInitializer: 'heNormal' })
      .apply(x) as tf.SymbolicTensor;
  });
  const output = tf.layers.dense({ name: 'output', units: classes, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ name: 'image_head', inputs: input, outputs: output });
}

/** Bytes of activations above which fine-tuning refuses a dataset (they are computed once and held). */
export const MAX_ACTIVATION_BYTES = 2 * 1024 ** 3;

/**
 * The frozen bottom's activations at the cut for every image (decoded and resized as the base does), n × width,
 * batch by batch, the signal checked between batches. Bad image i: InputError(i).
 */
export async function cutActivations(
  encoder: ImageEncoder,
  cut: string,
  images: Uint8Array[],
  signal?: AbortSignal,
): Promise<{ x: Float32Array; width: number }> {
  const bottom = encoder.bottom(cut);
  const width = (bottom.outputs[0].shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  if (images.length * width * 4 > MAX_ACTIVATION_BYTES) {
    throw new MlError(
      'invalid_data',
      `Fine-tuning at layer ${cut} holds ${width} activations per image: ${images.length} images need ${Math.ceil((images.length * width * 4) / 1024 ** 2)} MB (limit ${MAX_ACTIVATION_BYTES / 1024 ** 2} MB); train on fewer images or with a frozen base (trainable_base_layers 0)`,
    );
  }
  const x = new Float32Array(images.length * width);
  const batch = 8;
  for (let start = 0; start < images.length; start += batch) {
    throwIfAborted(signal);
    const pixels = encoder.preprocess(images.slice(start, start + batch), start);
    try {
      const out = bottom.predict(pixels) as tf.Tensor;
      x.set((await out.data()) as Float32Array, start * width);
      out.dispose();
    } finally {
      pixels.dispose();
    }
  }
  return { x, width };
}
