import { beforeAll, describe, expect, it } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { seededRandom } from '../random.js';

/** The naive reference: a row at a time, in plain numbers. */
function referenceSegmentSum(x: number[][], ids: number[], segments: number): number[][] {
  const out = Array.from({ length: segments }, () => new Array<number>(x[0].length).fill(0));
  ids.forEach((s, i) => {
    if (s >= 0 && s < segments)
      x[i].forEach((v, j) => {
        out[s][j] += v;
      });
  });
  return out;
}

function randomMatrix(rows: number, cols: number, random: () => number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.round((random() * 2 - 1) * 100) / 10));
}

describe.each(['cpu', 'wasm'] as const)('the segment kernels on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('registers fast UnsortedSegmentSum and GatherV2 kernels for the backend', () => {
    expect(tf.getBackend()).toBe(backend);
    for (const name of ['UnsortedSegmentSum', 'GatherV2']) {
      const kernel = tf.getKernel(name, backend) as unknown as Record<symbol, unknown>;
      expect(Object.getOwnPropertySymbols(kernel).some((s) => s.description === 'aiaas fast kernel')).toBe(true);
    }
  });

  it('sums rows into segments as the naive reference does, ids out of range dropped', () => {
    const random = seededRandom(7);
    const x = randomMatrix(50, 6, random);
    const ids = Array.from({ length: 50 }, (_, i) => (i % 11 === 0 ? -1 : i % 13 === 0 ? 99 : Math.floor(random() * 9)));
    const got = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(x), tf.tensor1d(ids, 'int32'), 9).arraySync());
    const want = referenceSegmentSum(x, ids, 9);
    got.forEach((row, i) => {
      row.forEach((v, j) => {
        expect(v).toBeCloseTo(want[i][j], 4);
      });
    });
  });

  it('handles 1-D and 3-D inputs and int32 values', () => {
    const ones = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4], 'int32'), tf.tensor1d([1, 0, 1, 2], 'int32'), 3).arraySync(),
    );
    expect(ones).toEqual([2, 4, 4]);
    const cube = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), tf.tensor1d([1, 1], 'int32'), 2).arraySync(),
    );
    expect(cube).toEqual([
      [
        [0, 0],
        [0, 0],
      ],
      [
        [6, 8],
        [10, 12],
      ],
    ]);
  });

  it('gathers rows like the stock kernel, and refuses an index out of range', () => {
    const random = seededRandom(8);
    const table = randomMatrix(20, 5, random);
    const ids = [3, 0, 19, 3, 7];
    const got = tf.tidy(() => tf.gather(tf.tensor2d(table), tf.tensor1d(ids, 'int32')).arraySync());
    got.forEach((row, i) => {
      row.forEach((v, j) => {
        expect(v).toBeCloseTo(table[ids[i]][j], 5);
      });
    });
    // Another axis goes to the stock kernel.
    const columns = tf.tidy(() => tf.gather(tf.tensor2d(table), tf.tensor1d([4, 1], 'int32'), 1).arraySync());
    columns.forEach((row, i) => {
      expect(row).toEqual([Math.fround(table[i][4]), Math.fround(table[i][1])]);
    });
    const before = tf.memory().numTensors;
    expect(() => tf.tidy(() => tf.gather(tf.tensor2d(table), tf.tensor1d([20], 'int32')))).toThrow(/not in \[0, 19\]/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives the gradient of a gather (repeated ids add up) equal to the hand-computed one', () => {
    const random = seededRandom(9);
    const table = randomMatrix(12, 4, random);
    const ids = [5, 2, 5, 11, 0, 5];
    const upstream = randomMatrix(ids.length, 4, random);
    const grad = tf.tidy(() => {
      const dy = tf.tensor2d(upstream);
      return tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(ids, 'int32')), dy)))(tf.tensor2d(table))
        .arraySync() as number[][];
    });
    const want = referenceSegmentSum(upstream, ids, 12);
    grad.forEach((row, i) => {
      row.forEach((v, j) => {
        expect(v).toBeCloseTo(want[i][j], 4);
      });
    });
  });

  it('trains an Embedding layer: its weight gradient is the sum of the upstream gradient of each token', () => {
    const vocabulary = 30;
    const dim = 3;
    const ids = [
      [1, 4, 4, 0],
      [7, 1, 29, 0],
    ];
    const { gradient, tableGradient } = tf.tidy(() => {
      const layer = tf.layers.embedding({ inputDim: vocabulary, outputDim: dim, inputLength: 4 });
      const input = tf.tensor2d(ids, [2, 4], 'int32');
      layer.apply(input);
      const weight = tf.tensor3d(
        Array.from({ length: 2 * 4 * dim }, (_, i) => (i % 7) - 3),
        [2, 4, dim],
      );
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, weight)) as tf.Scalar,
        [layer.getWeights()[0] as tf.Variable],
      );
      const g = Object.values(grads)[0].arraySync() as number[][];
      return { gradient: g, tableGradient: weight.arraySync() as number[][][] };
    });
    const flatIds = ids.flat();
    const upstream = tableGradient.flat();
    const want = referenceSegmentSum(upstream, flatIds, vocabulary);
    expect(gradient).toHaveLength(vocabulary);
    gradient.forEach((row, i) => {
      row.forEach((v, j) => {
        expect(v).toBeCloseTo(want[i][j], 5);
      });
    });
    expect(gradient[4]).toEqual(upstream[1].map((v, j) => v + upstream[2][j]));
  });

  it('leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const t = tf.randomNormal([100, 8]);
      tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, tf.tensor1d([1, 2, 3, 1], 'int32'))))(t);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
