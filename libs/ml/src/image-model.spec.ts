import { beforeAll, describe, expect, it } from '@jest/globals';
import { initBackend } from './backend.js';
import { MlError } from './errors.js';
import { imageAugmenter } from './image-model.js';
import { bombPng, drawShape, encodeJpeg, encodePng, shapeRows } from './image-testing.js';
import { checkLoads, evaluate, loadModel, predict } from './predict.js';
import { presetParameters } from './sizing.js';
import { seededRandom } from './random.js';
import { train } from './train.js';
import type { ClassificationMetrics, TrainResult } from './types.js';

const spec = { task: 'image-classification' as const, label: 'label', imageField: 'image' };

async function rejection(promise: Promise<unknown>): Promise<MlError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(MlError);
    return err as MlError;
  }
  throw new Error('expected an MlError');
}

describe('image classification from scratch', () => {
  let trained: TrainResult;

  beforeAll(async () => {
    await initBackend('wasm');
    trained = await train({ spec, rows: shapeRows(40, 20, 1), hyperparameters: { epochs: 6, seed: 7 } });
  });

  it('picks a grey 20×20 input from grey 20×20 images and learns the shapes', async () => {
    expect(trained.input_schema).toEqual({
      task: 'image-classification',
      label: 'label',
      image_field: 'image',
      image: { width: 20, height: 20, channels: 1 },
    });
    expect(trained.labels).toEqual(['bar', 'cross', 'square']);
    const holdout = await evaluate(trained.artifact, shapeRows(15, 20, 99));
    expect((holdout as ClassificationMetrics).accuracy).toBeGreaterThanOrEqual(0.9);
    expect((holdout as ClassificationMetrics).confusion_matrix.labels).toEqual(['bar', 'cross', 'square']);
  });

  it('counts its parameters before building, as the API does, and serves once loaded', async () => {
    const image = trained.input_schema.image!;
    expect(presetParameters({ task: 'image-classification', inputWidth: 0, outputWidth: 3, image }, trained.hyperparameters)).toBe(
      trained.parameters,
    );
    await expect(checkLoads(trained.artifact)).resolves.toBeUndefined();
  });

  it('predicts held-out images of another size and format, resized as training resized', async () => {
    const random = seededRandom(5);
    const inputs = [
      { image: encodePng(drawShape('cross', 20, random), 20, 20).toString('base64') },
      { image: encodePng(drawShape('square', 40, random), 40, 40, false).toString('base64') },
      { image: encodeJpeg(drawShape('bar', 20, random), 20, 20).toString('base64') },
    ];
    const { predictions } = await predict(trained.artifact, inputs);
    expect(predictions.map((p) => ('label' in p ? p.label : null))).toEqual(['cross', 'square', 'bar']);
  });

  it('names each bad image input by its index', async () => {
    const good = shapeRows(1, 20, 3)[0].image;
    const png = encodePng(drawShape('bar', 20, seededRandom(1)), 20, 20);
    const err = await rejection(
      predict(trained.artifact, [
        { image: good },
        { image: 'not base64!' },
        { image: Buffer.from('hello, not an image').toString('base64') },
        { image: png.subarray(0, png.length - 30).toString('base64') },
        { image: bombPng(50_000, 50_000).toString('base64') },
        { picture: good },
      ]),
    );
    expect(err.code).toBe('invalid_input');
    expect(err.details).toHaveLength(5);
    expect(err.details[0]).toMatch(/^inputs\[1\] .*base64/);
    expect(err.details[1]).toMatch(/^inputs\[2\] .*not a PNG or JPEG/);
    expect(err.details[2]).toMatch(/^inputs\[3\] cannot be decoded/);
    expect(err.details[3]).toMatch(/^inputs\[4\] is 50000×50000 pixels; the limit is/);
    expect(err.details[4]).toMatch(/^inputs\[5\] has no image field 'image'/);
  });

  it('explains each image with a saliency map on a coarse grid, normalised to [0, 1]', async () => {
    const model = await loadModel(trained.artifact);
    try {
      const { explanations } = await model.predict(shapeRows(1, 20, 11), { explain: true });
      expect(explanations).toHaveLength(3);
      for (const e of explanations!) {
        const { saliency } = e as { saliency: { width: number; height: number; values: number[] } };
        expect([saliency.width, saliency.height]).toEqual([20, 20]);
        expect(saliency.values).toHaveLength(400);
        expect(Math.max(...saliency.values)).toBe(1);
        expect(Math.min(...saliency.values)).toBeGreaterThanOrEqual(0);
      }
    } finally {
      model.dispose();
    }
  });

  it('gives byte-identical artifacts for the same seed', async () => {
    const rows = shapeRows(8, 12, 2);
    const a = await train({ spec, rows, hyperparameters: { epochs: 2, seed: 3, augmentation: { flip: true, shift: 0.1 } } });
    const b = await train({ spec, rows, hyperparameters: { epochs: 2, seed: 3, augmentation: { flip: true, shift: 0.1 } } });
    expect(a.sha256).toBe(b.sha256);
    expect(a.hyperparameters.augmentation).toEqual({ flip: true, shift: 0.1 });
  });

  it('stops with `canceled` at the next batch once the signal fires', async () => {
    const controller = new AbortController();
    const started = performance.now();
    const err = await rejection(
      train({
        spec,
        rows: shapeRows(40, 20, 4),
        hyperparameters: { epochs: 50, seed: 1, batch_size: 8 },
        signal: controller.signal,
        onBatch: (b) => b.batch === 2 && controller.abort(),
      }),
    );
    expect(err.code).toBe('canceled');
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('lists every undecodable training image by row', async () => {
    const rows = shapeRows(3, 20, 5);
    rows[2] = { image: 'AAAA', label: 'bar' };
    rows[5] = { label: 'bar' };
    const err = await rejection(train({ spec, rows, hyperparameters: { epochs: 1, seed: 1, validation_split: 0 } }));
    expect(err.code).toBe('invalid_data');
    expect(err.details).toEqual([expect.stringMatching(/^row 3 is not a PNG or JPEG image/), "row 6 has no image field 'image'"]);
  });

  it('refuses trainable_base_layers and bad augmentation without a base model', async () => {
    const err = await rejection(
      train({
        spec,
        rows: shapeRows(2, 12, 1),
        hyperparameters: { trainable_base_layers: 2, augmentation: { flip: 'yes', shift: 2 } as never },
      }),
    );
    expect(err.code).toBe('invalid_hyperparameters');
    expect(err.details).toEqual([
      'trainable_base_layers applies to a head on a base model (base_model); a model from scratch trains every layer',
      'augmentation.flip must be a boolean',
      "augmentation.shift must be a number from 0 to 0.25 (a fraction of the image's size)",
    ]);
  });
});

describe('image augmentation', () => {
  it('mirrors and shifts within the image, the uncovered border black', () => {
    const image = { width: 3, height: 2, channels: 1 as const };
    const batch = Float32Array.from([1, 2, 3, 4, 5, 6]);
    imageAugmenter(image, { flip: true, shift: 0 })(batch, 1, () => 0.1);
    expect(Array.from(batch)).toEqual([3, 2, 1, 6, 5, 4]);
    const shifted = Float32Array.from([1, 2, 3, 4, 5, 6]);
    // shift of at most round(0.34 × 3) = 1 pixel; random 0.99 picks +1 in x and in y
    imageAugmenter(image, { flip: false, shift: 0.34 })(shifted, 1, () => 0.99);
    expect(Array.from(shifted)).toEqual([0, 0, 0, 0, 1, 2]);
  });
});
