import { beforeAll, describe, expect, it } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import { decodeArtifact } from './artifact/format.js';
import { initBackend } from './backend.js';
import { MlError } from './errors.js';
import { evaluate, loadModel, predict } from './predict.js';
import { blobRows, keywordTexts, linearRows } from './synthetic.js';
import { train } from './train.js';
import type { ClassificationMetrics, RegressionMetrics, Row } from './types.js';

const tabular = blobRows(400, { features: 4, classes: 3, seed: 11 });
const regression = linearRows(400, { features: 3, seed: 12 });
const texts = keywordTexts(450, { classes: 3, seed: 13 });
const quick = { epochs: 12, batch_size: 32, learning_rate: 0.01, seed: 5, hidden_units: [16] };

async function rejection(promise: Promise<unknown>): Promise<MlError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(MlError);
    return err as MlError;
  }
  throw new Error('expected a rejection');
}

describe.each(['cpu', 'wasm'] as const)('training on %s', (backend) => {
  let baseline = 0;
  beforeAll(async () => {
    const info = await initBackend(backend);
    expect(info.name).toBe(backend);
    baseline = tf.memory().numTensors;
  });

  it('separates a tabular problem with accuracy ≥ 0.95, reporting every epoch', async () => {
    const epochs: number[] = [];
    const result = await train({
      spec: { task: 'classification', label: 'label' },
      rows: tabular,
      hyperparameters: quick,
      onEpoch: (p) => {
        epochs.push(p.epoch);
        expect(p.val_loss).not.toBeNull();
        expect(p.metrics).toEqual({ accuracy: expect.any(Number), val_accuracy: expect.any(Number) });
        expect(p.eta_seconds).toBeGreaterThanOrEqual(0);
      },
    });
    const metrics = result.metrics as ClassificationMetrics;
    expect(metrics.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(result.metrics_split).toBe('validation');
    expect(result.validation_samples).toBe(80);
    expect(metrics.confusion_matrix.labels).toEqual(['class_a', 'class_b', 'class_c']);
    expect(metrics.confusion_matrix.matrix.flat().reduce((a, b) => a + b)).toBe(80);
    expect(Object.keys(metrics.per_class)).toEqual(['class_a', 'class_b', 'class_c']);
    expect(metrics.macro_f1).toBeGreaterThanOrEqual(0.9);
    expect(epochs).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(result.backend).toBe(backend);
    expect(result.labels).toEqual(['class_a', 'class_b', 'class_c']);
    expect(result.parameters).toBe(4 * 16 + 16 + 16 * 3 + 3);
    expect(result.input_schema.features!.map((f) => f.name)).toEqual(['x1', 'x2', 'x3', 'x4']);
    expect(tf.memory().numTensors).toBe(baseline);

    // Standardization statistics come from the training split only.
    const pre = decodeArtifact(result.artifact).metadata.preprocessing;
    expect(pre.kind).toBe('tabular');
    const all = tabular.map((r) => r.x1 as number);
    const allMean = all.reduce((a, b) => a + b) / all.length;
    if (pre.kind === 'tabular') expect(pre.mean[0]).not.toBeCloseTo(allMean, 6);
  });

  it('fits a linear law with R² ≥ 0.95, losses in the label units', async () => {
    const result = await train({
      spec: { task: 'regression', label: 'y' },
      rows: regression.rows,
      hyperparameters: { ...quick, epochs: 20 },
    });
    const metrics = result.metrics as RegressionMetrics;
    expect(metrics.r2).toBeGreaterThanOrEqual(0.95);
    expect(metrics.rmse).toBeCloseTo(Math.sqrt(metrics.mse), 6);
    expect(result.history.at(-1)!.val_loss).toBeCloseTo(metrics.mse, 1);
    expect(result.history.at(-1)!.metrics).toEqual({ mae: expect.any(Number), val_mae: expect.any(Number) });
    const { predictions } = await predict(result.artifact, [{ x1: 1, x2: 2, x3: 3 }]);
    const [w, b] = [regression.weights, regression.bias];
    const truth = b + w[0] * 1 + w[1] * 2 + w[2] * 3;
    expect((predictions[0] as { value: number }).value).toBeCloseTo(truth, -1);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('classifies texts by planted keywords with accuracy ≥ 0.95', async () => {
    const result = await train({
      spec: { task: 'text-classification', label: 'topic', textField: 'text' },
      rows: texts,
      hyperparameters: { epochs: 10, batch_size: 32, learning_rate: 0.02, seed: 3, max_vocabulary: 4096 },
    });
    expect((result.metrics as ClassificationMetrics).accuracy).toBeGreaterThanOrEqual(0.95);
    expect(result.input_schema).toEqual({ task: 'text-classification', label: 'topic', text_field: 'text', buckets: 4096, ngrams: 1 });
    const pre = decodeArtifact(result.artifact).metadata.preprocessing;
    if (pre.kind !== 'hashed-ngrams') throw new Error('hashed n-gram preprocessing expected');
    expect(pre).toMatchObject({ buckets: 4096, ngrams: 1, tokenizer: 'lowercase-words-punctuation', weighting: 'sublinear-tf-idf-l2' });

    const { predictions, explanations } = await predict(
      result.artifact,
      [{ text: 'just some words with BETA1 in it' }, { text: 'zzz unknown qqq' }],
      { explain: true },
    );
    expect(predictions[0]).toMatchObject({ label: 'topic_1' });
    const probabilities = (predictions[0] as { probabilities: Record<string, number> }).probabilities;
    expect(Object.keys(probabilities)).toEqual(['topic_0', 'topic_1', 'topic_2']);
    expect(Object.values(probabilities).reduce((a, b) => a + b)).toBeCloseTo(1, 5);
    const tokens = explanations![0] as Array<{ token: string; score: number }>;
    expect(tokens.map((t) => t.token)).toEqual(['just', 'some', 'words', 'with', 'beta1', 'in', 'it']);
    const top = [...tokens].sort((a, b) => b.score - a.score)[0];
    expect(top.token).toBe('beta1');
    expect((explanations![1] as unknown[]).length).toBe(3);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('gives identical weights for the same seed, and other weights for another seed', async () => {
    const run = (seed: number) =>
      train({
        spec: { task: 'classification', label: 'label' },
        rows: tabular.slice(0, 150),
        hyperparameters: { ...quick, epochs: 3, seed },
      });
    const [a, b, c] = [await run(21), await run(21), await run(22)];
    expect(a.sha256).toBe(b.sha256);
    expect(a.artifact.equals(b.artifact)).toBe(true);
    expect(decodeArtifact(c.artifact).json.weightData).not.toBe(decodeArtifact(a.artifact).json.weightData);
    expect(a.hyperparameters.seed).toBe(21);
  });

  it('stops within one batch of a cancellation', async () => {
    const controller = new AbortController();
    const seen: Array<[number, number]> = [];
    const error = await rejection(
      train({
        spec: { task: 'classification', label: 'label' },
        rows: tabular,
        hyperparameters: { ...quick, epochs: 50, batch_size: 16 },
        signal: controller.signal,
        onBatch: (p) => {
          seen.push([p.epoch, p.batch]);
          if (p.epoch === 2 && p.batch === 3) controller.abort();
        },
      }),
    );
    expect(error.code).toBe('canceled');
    expect(seen.at(-1)).toEqual([2, 3]);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('cancels between batches when the signal fires from a timer', async () => {
    const controller = new AbortController();
    let batches = 0;
    let batchesAtAbort = -1;
    const timer = setTimeout(() => {
      batchesAtAbort = batches;
      controller.abort();
    }, 150);
    const error = await rejection(
      train({
        spec: { task: 'classification', label: 'label' },
        rows: tabular,
        hyperparameters: { ...quick, epochs: 1000, batch_size: 8 },
        signal: controller.signal,
        onBatch: () => batches++,
      }),
    );
    clearTimeout(timer);
    expect(error.code).toBe('canceled');
    expect(batchesAtAbort).toBeGreaterThan(0);
    expect(batches - batchesAtAbort).toBeLessThanOrEqual(1);
  });

  it('loads a saved artifact back with identical predictions, evaluation and explanations', async () => {
    const result = await train({
      spec: { task: 'classification', label: 'label' },
      rows: tabular,
      hyperparameters: { ...quick, epochs: 4 },
    });
    const inputs: Row[] = tabular.slice(0, 20).map(({ label: _, ...features }) => features);
    const first = await predict(result.artifact, inputs, { explain: true });
    const copy = Buffer.from(result.artifact.toString('utf8'), 'utf8');
    const model = await loadModel(copy);
    const again = await model.predict(inputs, { explain: true });
    expect(again).toEqual(first);
    expect(model.sha256).toBe(result.sha256);
    const metrics = await model.evaluate(tabular.slice(0, 100));
    expect(await evaluate(result.artifact, tabular.slice(0, 100))).toEqual(metrics);
    const explanation = first.explanations![0] as Record<string, number>;
    expect(Object.keys(explanation)).toEqual(['x1', 'x2', 'x3', 'x4']);
    model.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('stops early and restores the best weights', async () => {
    const result = await train({
      spec: { task: 'classification', label: 'label' },
      rows: tabular,
      hyperparameters: { ...quick, epochs: 200, learning_rate: 0.05, early_stopping: { patience: 2, min_delta: 0.5 } },
    });
    expect(result.stopped_early).toBe(true);
    expect(result.history.length).toBeLessThan(200);
    expect(result.history.length).toBe(result.best_epoch + 2);
    const best = result.history[result.best_epoch - 1];
    expect((result.metrics as ClassificationMetrics).loss).toBeCloseTo(best.val_loss!, 4);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('fine-tunes from a base artifact, keeping its preprocessing and labels', async () => {
    const base = await train({
      spec: { task: 'classification', label: 'label' },
      rows: tabular.slice(0, 200),
      hyperparameters: { ...quick, epochs: 2 },
    });
    const tuned = await train({
      spec: { task: 'classification', label: 'label' },
      rows: tabular.slice(200),
      base: base.artifact,
      hyperparameters: { epochs: 8, learning_rate: 0.01, seed: 4 },
    });
    const baseMeta = decodeArtifact(base.artifact).metadata;
    const tunedMeta = decodeArtifact(tuned.artifact).metadata;
    expect(tunedMeta.preprocessing).toEqual(baseMeta.preprocessing);
    expect(tuned.architecture).toEqual(base.architecture);
    expect(tuned.hyperparameters).not.toHaveProperty('hidden_units');
    expect((tuned.metrics as ClassificationMetrics).accuracy).toBeGreaterThanOrEqual(0.95);
    const regressionError = await rejection(train({ spec: { task: 'regression', label: 'x1' }, rows: tabular, base: base.artifact }));
    expect(regressionError.code).toBe('invalid_data');
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('trains a custom architecture that passes the checks, and refuses one that does not', async () => {
    const architecture = {
      class_name: 'Sequential',
      config: {
        name: 'custom',
        layers: [
          { class_name: 'Dense', config: { name: 'd1', units: 8, activation: 'tanh' } },
          { class_name: 'Dropout', config: { name: 'drop', rate: 0.1 } },
          { class_name: 'Dense', config: { name: 'out', units: 3, activation: 'softmax' } },
        ],
      },
    };
    const run = () =>
      train({
        spec: { task: 'classification', label: 'label' },
        rows: tabular,
        architecture,
        hyperparameters: { ...quick, hidden_units: undefined, seed: 8 },
        maxParameters: 100,
      });
    const [a, b] = [await run(), await run()];
    expect(a.parameters).toBe(4 * 8 + 8 + 8 * 3 + 3);
    expect((a.metrics as ClassificationMetrics).accuracy).toBeGreaterThanOrEqual(0.9);
    expect(a.sha256).toBe(b.sha256); // dropout masks come from the seed too
    const tooBig = await rejection(
      train({ spec: { task: 'classification', label: 'label' }, rows: tabular, architecture, maxParameters: 50 }),
    );
    expect(tooBig.code).toBe('too_many_parameters');
    const wrongOutput = JSON.parse(JSON.stringify(architecture)) as typeof architecture;
    wrongOutput.config.layers[2].config.units = 2;
    const refused = await rejection(train({ spec: { task: 'classification', label: 'label' }, rows: tabular, architecture: wrongOutput }));
    expect(refused.code).toBe('architecture_not_allowed');
    expect(refused.message).toContain('the data has 3 classes');
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('refuses bad data with a message naming the row and column', async () => {
    const rows = tabular.slice(0, 50).map((r) => ({ ...r }));
    rows[6].x2 = 'abc';
    const error = await rejection(train({ spec: { task: 'classification', label: 'label' }, rows }));
    expect(error.code).toBe('invalid_data');
    expect(error.message).toContain("row 7: feature 'x2' is not a number ('abc')");
    const oneClass = await rejection(
      train({ spec: { task: 'classification', label: 'label' }, rows: tabular.filter((r) => r.label === 'class_a') }),
    );
    expect(oneClass.message).toMatch(/at least 2 classes/);
    const badInputs = await train({
      spec: { task: 'classification', label: 'label' },
      rows: tabular.slice(0, 60),
      hyperparameters: { ...quick, epochs: 1 },
    });
    const missing = await rejection(predict(badInputs.artifact, [{ x1: 1, x2: 2, x3: 3 }]));
    expect(missing.code).toBe('invalid_input');
    expect(missing.message).toContain("inputs[0] is missing feature 'x4'");
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
