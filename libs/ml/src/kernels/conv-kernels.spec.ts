import { describe, expect, it } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { seededRandom } from '../random.js';

/** Gradients of a loss through conv2d and depthwiseConv2d, on one backend, as plain arrays. */
async function gradients(backend: 'cpu' | 'wasm', xShape: [number, number, number, number], strides: number, pad: 'same' | 'valid') {
  await initBackend(backend);
  const random = seededRandom(3);
  const values = (shape: number[]) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1);
  const c = xShape[3];
  return tf.tidy(() => {
    const x = tf.tensor4d(values(xShape), xShape);
    const w = tf.tensor4d(values([3, 3, c, 5]), [3, 3, c, 5]);
    const dw = tf.tensor4d(values([3, 3, c, 2]), [3, 3, c, 2]);
    const f = (...[a, b, d]: tf.Tensor[]) =>
      tf.addN([
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad))),
        tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, d as tf.Tensor4D, strides, pad))),
        tf.sum(tf.square(tf.maxPool(a as tf.Tensor4D, 2, strides, pad))),
        // matmuls with a transposed operand, forward and in their gradients
        tf.sum(tf.square(tf.matMul(tf.reshape(a, [a.shape[0], -1]), tf.reshape(a, [a.shape[0], -1]), true, false))),
        tf.sum(tf.square(tf.matMul(tf.reshape(a, [a.shape[0], -1]), tf.reshape(a, [a.shape[0], -1]), false, true))),
      ]);
    return tf
      .grads(f)([x, w, dw])
      .map((g) => Array.from(g.dataSync()));
  });
}

describe('the convolution gradient kernels on wasm', () => {
  it.each([
    [[2, 7, 6, 3], 1, 'same'],
    [[1, 9, 8, 4], 2, 'valid'],
    [[3, 8, 8, 2], 2, 'same'],
  ] as const)('give the gradients of cpu for input %j, stride %d, padding %s', async (shape, strides, pad) => {
    const want = await gradients('cpu', [...shape], strides, pad);
    const got = await gradients('wasm', [...shape], strides, pad);
    got.forEach((g, k) => {
      g.forEach((v, i) => {
        expect(v).toBeCloseTo(want[k][i], 3);
      });
    });
  });
});
