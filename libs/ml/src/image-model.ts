import * as tf from '@tensorflow/tfjs';
import { imageBlocks } from './sizing.js';
import type { ImageAugmentation, ResolvedHyperparameters } from './types.js';

export interface ImageShape {
  width: number;
  height: number;
  channels: 1 | 3;
}

/**
 * The default image model, trained from scratch: the flat pixel row reshaped to height × width × channels, then
 * blocks of a 3×3 convolution (ReLU, same padding) and 2×2 max pooling (32, then 64 filters; a third block of 64 on
 * images of 32 pixels and more), flattened, dropout 0.25, the hidden dense layers (ReLU, default one of 128), dropout
 * 0.5 and a softmax. Fixed layer names: the same seed gives byte-identical artifacts.
 */
export function buildImagePreset(image: ImageShape, classes: number, hp: ResolvedHyperparameters): tf.LayersModel {
  const model = tf.sequential({ name: 'image_cnn' });
  model.add(
    tf.layers.reshape({
      name: 'pixels',
      targetShape: [image.height, image.width, image.channels],
      batchInputShape: [null, image.width * image.height * image.channels],
    }),
  );
  imageBlocks(image).forEach((filters, i) => {
    model.add(
      tf.layers.conv2d({
        name: `conv_${i + 1}`,
        filters,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: 'heNormal',
      }),
    );
    model.add(tf.layers.maxPooling2d({ name: `pool_${i + 1}`, poolSize: 2 }));
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dropout({ name: 'dropout_features', rate: 0.25 }));
  (hp.hidden_units ?? []).forEach((units, i) => {
    model.add(tf.layers.dense({ name: `hidden_${i + 1}`, units, activation: 'relu', kernelInitializer: 'heNormal' }));
  });
  model.add(tf.layers.dropout({ name: 'dropout_hidden', rate: 0.5 }));
  model.add(tf.layers.dense({ name: 'output', units: classes, activation: 'softmax' }));
  return model;
}

/**
 * The preset's learning rate: the given one for the first ⅔ of the epochs, a fifth of it after (the last epochs settle
 * instead of bouncing: on MNIST digits the validation accuracy of the last epochs varied by ±0.7 points at a constant
 * rate).
 */
export function imageLearningRateFactor(epoch: number, epochs: number): number {
  return epochs >= 3 && epoch > Math.round((2 * epochs) / 3) ? 0.2 : 1;
}

/**
 * Augments a batch of flat images in place: each mirrored left to right with probability 1/2 (`flip`) and moved by a
 * whole number of pixels up to `shift` × its size in each direction, the uncovered border black (0).
 */
export function imageAugmenter(
  image: ImageShape,
  augmentation: Required<ImageAugmentation>,
): (batch: Float32Array, rows: number, random: () => number) => void {
  const { width: W, height: H, channels: C } = image;
  const size = W * H * C;
  const scratch = new Float32Array(size);
  const maxX = Math.round(augmentation.shift * W);
  const maxY = Math.round(augmentation.shift * H);
  return (batch, rows, random) => {
    for (let r = 0; r < rows; r++) {
      const flip = augmentation.flip && random() < 0.5;
      const dx = maxX > 0 ? Math.floor(random() * (2 * maxX + 1)) - maxX : 0;
      const dy = maxY > 0 ? Math.floor(random() * (2 * maxY + 1)) - maxY : 0;
      if (!flip && dx === 0 && dy === 0) continue;
      const row = batch.subarray(r * size, (r + 1) * size);
      scratch.fill(0);
      for (let y = 0; y < H; y++) {
        const sy = y - dy;
        if (sy < 0 || sy >= H) continue;
        for (let x = 0; x < W; x++) {
          const moved = x - dx;
          const sx = flip ? W - 1 - moved : moved;
          if (moved < 0 || moved >= W) continue;
          for (let c = 0; c < C; c++) scratch[(y * W + x) * C + c] = row[(sy * W + sx) * C + c];
        }
      }
      row.set(scratch);
    }
  };
}
