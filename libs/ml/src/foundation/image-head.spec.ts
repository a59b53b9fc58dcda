import { beforeAll, describe, expect, it } from '@jest/globals';
import { initBackend } from '../backend.js';
import { MlError } from '../errors.js';
import { colourRows } from '../image-testing.js';
import { evaluate, loadModel, predict } from '../predict.js';
import { train } from '../train.js';
import type { ClassificationMetrics, Row } from '../types.js';
import { baseFeatures } from './features.js';
import { loadFoundation, type FoundationHandle } from './runtime.js';

const spec = { task: 'image-classification' as const, label: 'label', imageField: 'image' };
const bytes = (rows: Row[]) => rows.map((r) => new Uint8Array(Buffer.from(String(r.image), 'base64')));

describe('heads on MobileNetV2', () => {
  let handle: FoundationHandle;
  const rows = colourRows(8, 32, 1);
  // the same size as training: per-pixel noise upsampled to 224 × 224 is a texture whose scale the backbone sees
  const holdout = colourRows(3, 32, 2);
  let features: Float32Array[];

  beforeAll(async () => {
    await initBackend('wasm');
    handle = await loadFoundation('mobilenet-v2');
    features = await baseFeatures(handle, bytes(rows));
  });

  it('trains a head on cached features that tells red scenes from blue ones', async () => {
    const result = await train({
      spec,
      rows,
      baseModel: { id: 'mobilenet-v2', sha256: handle.sha256, features },
      hyperparameters: { seed: 1 },
    });
    expect(result.input_schema).toEqual({
      task: 'image-classification',
      label: 'label',
      image_field: 'image',
      base_model: { id: 'mobilenet-v2', sha256: handle.sha256 },
    });
    const metrics = (await evaluate(result.artifact, holdout, await baseFeatures(handle, bytes(holdout)))) as ClassificationMetrics;
    expect(metrics.accuracy).toBe(1);
    // without the cache, serving computes the same features itself
    const { predictions } = await predict(
      result.artifact,
      holdout.slice(0, 2).map((r) => ({ image: r.image })),
    );
    expect(predictions.map((p) => ('label' in p ? p.label : null))).toEqual(['blue', 'red']);
  });

  it('explains a head with a saliency map through the backbone', async () => {
    const result = await train({
      spec,
      rows,
      baseModel: { id: 'mobilenet-v2', sha256: handle.sha256, features },
      hyperparameters: { seed: 1, epochs: 5 },
    });
    const model = await loadModel(result.artifact);
    try {
      const { explanations } = await model.predict([{ image: holdout[0].image }], { explain: true });
      const { saliency } = explanations![0] as { saliency: { width: number; height: number; values: number[] } };
      expect([saliency.width, saliency.height, saliency.values.length]).toEqual([14, 14, 196]);
      expect(Math.max(...saliency.values)).toBe(1);
    } finally {
      model.dispose();
    }
  });

  it('fine-tunes the top of the backbone and stores only the top and the head', async () => {
    const result = await train({
      spec,
      rows,
      baseModel: { id: 'mobilenet-v2', sha256: handle.sha256 },
      hyperparameters: { seed: 1, epochs: 5, trainable_base_layers: 2 },
    });
    const pre = JSON.parse(result.artifact.toString('utf8')).userDefinedMetadata.aiaas.preprocessing;
    expect(pre.fine_tuned).toEqual({ trainable_base_layers: 2, cut: 'block_16_project_BN', cut_shape: [7, 7, 320] });
    // Conv_1 (320 → 1280, 1×1) and its batch normalization, the head: not the 2.26 M parameters of the backbone
    expect(result.parameters).toBeLessThan(450_000);
    expect(result.hyperparameters.trainable_base_layers).toBe(2);
    const metrics = (await evaluate(result.artifact, holdout)) as ClassificationMetrics;
    expect(metrics.accuracy).toBe(1);
  });

  it('refuses more trainable layers than the backbone has, naming its count', async () => {
    const err = await train({
      spec,
      rows,
      baseModel: { id: 'mobilenet-v2', sha256: handle.sha256 },
      hyperparameters: { trainable_base_layers: 500 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlError);
    expect((err as MlError).message).toMatch(/^trainable_base_layers is 500; mobilenet-v2 has \d+ layers with weights$/);
  });
});
