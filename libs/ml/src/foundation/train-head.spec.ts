import { beforeAll, describe, expect, it } from '@jest/globals';
import { decodeArtifact, encodeArtifact } from '../artifact/format.js';
import { initBackend } from '../backend.js';
import { MlError } from '../errors.js';
import { loadModel, predict } from '../predict.js';
import { train } from '../train.js';
import type { ClassificationMetrics, RegressionMetrics, Row } from '../types.js';
import { baseFeatures } from './features.js';
import { loadFoundation, type FoundationHandle } from './runtime.js';

const BASE = 'universal-sentence-encoder-lite';
const sports = [
  'The striker scored a late goal to win the match.',
  'The team trained hard before the championship final.',
  'Fans cheered as the runner crossed the finish line.',
  'The coach praised the defence after the game.',
  'She won the tennis tournament in straight sets.',
  'The goalkeeper saved a penalty in extra time.',
  'The cyclists raced up the mountain stage.',
  'He broke the national record in the hundred metres.',
  'The referee showed a red card in the second half.',
  'Our basketball team lost the semi-final by two points.',
];
const cooking = [
  'Whisk the eggs with sugar until the mixture is pale.',
  'Simmer the tomato sauce with garlic for twenty minutes.',
  'Bake the bread in a hot oven until golden.',
  'Chop the onions finely and fry them in butter.',
  'Season the soup with salt, pepper and fresh herbs.',
  'Knead the dough and let it rise for an hour.',
  'Roast the vegetables with olive oil and rosemary.',
  'Stir the risotto slowly while adding warm stock.',
  'Marinate the chicken overnight in yoghurt and spices.',
  'Grate the cheese over the pasta before serving.',
];
const rows: Row[] = [...sports.map((text) => ({ text, topic: 'sports' })), ...cooking.map((text) => ({ text, topic: 'cooking' }))];
const spec = { task: 'text-classification' as const, label: 'topic', textField: 'text' };

describe('transfer learning: a head on the frozen USE-lite encoder', () => {
  let use: FoundationHandle;
  let features: Float32Array[];
  beforeAll(async () => {
    await initBackend('wasm');
    use = await loadFoundation(BASE);
    features = await baseFeatures(
      use,
      rows.map((r) => r.text as string),
    );
  });

  it('trains a head on cached base features and predicts from raw text, running the base itself', async () => {
    const result = await train({
      spec,
      rows,
      hyperparameters: { seed: 3, epochs: 60, validation_split: 0 },
      baseModel: { id: BASE, sha256: use.sha256, features },
    });
    expect(result.input_schema).toMatchObject({
      task: 'text-classification',
      text_field: 'text',
      base_model: { id: BASE, sha256: use.sha256 },
    });
    expect((result.metrics as ClassificationMetrics).accuracy).toBe(1);
    const decoded = decodeArtifact(result.artifact);
    expect(decoded.metadata.base).toEqual({ id: BASE, sha256: use.sha256 });
    // the head only: never a copy of the encoder's 26 MB
    expect(result.artifact.byteLength).toBeLessThan(2_000_000);
    expect(result.parameters).toBeLessThan(100_000);
    const { predictions, explanations } = await predict(
      result.artifact,
      [{ text: 'The midfielder was injured during the football match.' }, { text: 'Add the flour and mix the batter gently.' }],
      { explain: true },
    );
    expect(predictions.map((p) => ('label' in p ? p.label : null))).toEqual(['sports', 'cooking']);
    expect(explanations).toBeUndefined();
  });

  it('shares one loaded base between heads, and evaluates with cached features as it does without', async () => {
    const result = await train({
      spec,
      rows,
      hyperparameters: { seed: 4, epochs: 30 },
      baseModel: { id: BASE, sha256: use.sha256, features },
    });
    const a = await loadModel(result.artifact);
    const b = await loadModel(result.artifact);
    expect(a.base).toBe(use);
    expect(b.base).toBe(use);
    a.dispose();
    expect(await loadFoundation(BASE)).toBe(use);
    expect(await b.evaluate(rows, features)).toEqual(await b.evaluate(rows));
    b.dispose();
  });

  it('refuses empty texts at predict as bad inputs naming the index', async () => {
    const result = await train({
      spec,
      rows,
      hyperparameters: { seed: 5, epochs: 5 },
      baseModel: { id: BASE, sha256: use.sha256, features },
    });
    await expect(predict(result.artifact, [{ text: 'fine' }, { text: '   ' }])).rejects.toThrow(
      "inputs[1]: the text field 'text' is empty or not a string",
    );
    await expect(predict(result.artifact, [{ text: 'fine' }, { text: '   ' }])).rejects.toBeInstanceOf(MlError);
  });

  it('refuses a head whose base weights differ from the ones this process has', async () => {
    const result = await train({
      spec,
      rows,
      hyperparameters: { seed: 6, epochs: 5 },
      baseModel: { id: BASE, sha256: use.sha256, features },
    });
    const json = decodeArtifact(result.artifact).json;
    const pre = json.userDefinedMetadata.aiaas.preprocessing as { base: { sha256: string } };
    pre.base.sha256 = '0'.repeat(64);
    await expect(loadModel(encodeArtifact(json))).rejects.toMatchObject({ code: 'invalid_artifact' });
  });

  it('trains a linear head for regression on text', async () => {
    const scored = rows.map((r, i) => ({ text: r.text, score: i < 10 ? 10 + (i % 3) : -10 - (i % 3) }));
    const result = await train({
      spec: { task: 'regression', label: 'score', textField: 'text' },
      rows: scored,
      hyperparameters: { seed: 7, epochs: 80, validation_split: 0 },
      baseModel: { id: BASE, sha256: use.sha256, features },
    });
    expect((result.metrics as RegressionMetrics).r2).toBeGreaterThan(0.8);
    const { predictions } = await predict(result.artifact, [{ text: 'The team celebrated the victory in the stadium.' }]);
    expect((predictions[0] as { value: number }).value).toBeGreaterThan(0);
  });

  it('refuses features that do not match the rows', async () => {
    await expect(train({ spec, rows, baseModel: { id: BASE, sha256: use.sha256, features: features.slice(1) } })).rejects.toMatchObject({
      code: 'invalid_data',
    });
    await expect(train({ spec, rows, baseModel: { id: 'mobilenet-v2', sha256: use.sha256, features } })).rejects.toThrow(
      "'mobilenet-v2' is not a text foundation model",
    );
  });
});
