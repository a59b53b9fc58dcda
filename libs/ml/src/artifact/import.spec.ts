import { beforeAll, describe, expect, it } from '@jest/globals';
import { thrown } from '../testing.js';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { loadModel } from '../predict.js';
import { blobRows, keywordTexts } from '../synthetic.js';
import { train } from '../train.js';
import type { Row, TrainResult } from '../types.js';
import { decodeArtifact, readArtifact } from './format.js';
import { importLayersModel, inlineWeightFiles, type ImportMeta } from './import.js';


/** A model.json as TF.js writes one elsewhere: no aiaas metadata. */
function foreignModelJson(result: TrainResult): Record<string, unknown> {
  const { userDefinedMetadata: _, ...json } = decodeArtifact(result.artifact).json;
  return JSON.parse(JSON.stringify(json));
}

describe('importing a TF.js layers model trained elsewhere', () => {
  const rows = blobRows(120, { features: 3, classes: 2, seed: 4 });
  const inputs: Row[] = rows.slice(0, 10).map(({ label: _, ...features }) => features);
  let tabular: TrainResult;
  let meta: ImportMeta;

  beforeAll(async () => {
    await initBackend('wasm');
    tabular = await train({ spec: { task: 'classification', label: 'label' }, rows, hyperparameters: { epochs: 2, hidden_units: [5], seed: 1 } });
    const pre = decodeArtifact(tabular.artifact).metadata.preprocessing;
    if (pre.kind !== 'tabular') throw new Error('tabular expected');
    meta = { task: 'classification', input_schema: { features: ['x1', 'x2', 'x3'], label: 'label' }, labels: tabular.labels, standardization: { mean: pre.mean, std: pre.std } };
  });

  it('wraps a valid upload as an artifact that predicts as the original does', async () => {
    const before = tf.memory().numTensors;
    const imported = importLayersModel(JSON.stringify(foreignModelJson(tabular)), meta, 1000);
    expect(imported.parameters).toBe(tabular.parameters);
    expect(imported.input_schema).toEqual(tabular.input_schema);
    expect(readArtifact(imported.artifact)).toMatchObject({ parameters: tabular.parameters, labels: tabular.labels, sha256: imported.sha256 });
    const [original, copy] = [await loadModel(tabular.artifact), await loadModel(imported.artifact)];
    expect(copy.predict(inputs)).toEqual(original.predict(inputs));
    original.dispose();
    copy.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('inlines weight files listed in the manifest', () => {
    const json = foreignModelJson(tabular);
    const weights = Buffer.from(json.weightData as string, 'base64');
    const manifest = json.weightsManifest as Array<{ paths: string[] }>;
    manifest[0].paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
    delete json.weightData;
    expect(thrown(() => importLayersModel(json, meta)).message).toContain('weightData is missing');
    const files = { 'group1-shard1of2.bin': weights.subarray(0, 10), 'group1-shard2of2.bin': weights.subarray(10) };
    expect(importLayersModel(inlineWeightFiles(json, files), meta).sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(thrown(() => inlineWeightFiles(json, { 'group1-shard1of2.bin': weights })).details).toEqual(["'group1-shard2of2.bin' is listed in weightsManifest but not sent"]);
  });

  it('says what is wrong with a broken upload', () => {
    expect(thrown(() => importLayersModel('{"format": ', meta)).message).toBe('The model is not valid JSON');
    expect(thrown(() => importLayersModel([], meta)).message).toContain('must be a JSON object');
    const shape = thrown(() => importLayersModel({ format: 'graph-model', weightsManifest: [{ weights: [{ name: 'w', shape: [2], dtype: 'complex64' }] }], weightData: '%%' }, meta));
    expect(shape.code).toBe('invalid_model');
    expect(shape.details).toEqual([
      `format is "graph-model", not 'layers-model'`,
      'modelTopology is missing',
      `weight 0 'w' has dtype "complex64" (float32, int32 or bool expected)`,
      'weightData is not base64',
    ]);

    const truncated = foreignModelJson(tabular);
    truncated.weightData = Buffer.from(truncated.weightData as string, 'base64').subarray(8).toString('base64');
    expect(thrown(() => importLayersModel(truncated, meta)).details[0]).toMatch(/^weightData holds \d+ bytes; the weight specs need \d+$/);

    const unknownLayer = foreignModelJson(tabular);
    ((unknownLayer.modelTopology as { config: { layers: Array<{ class_name: string }> } }).config.layers[0]).class_name = 'Lambda';
    const layerError = thrown(() => importLayersModel(unknownLayer, meta));
    expect(layerError.code).toBe('architecture_not_allowed');
    expect(layerError.message).toContain("class 'Lambda' is not allowed");

    const wider = thrown(() => importLayersModel(foreignModelJson(tabular), { ...meta, input_schema: { features: ['x1', 'x2', 'x3', 'x4'] }, standardization: undefined }));
    expect(wider.details).toEqual(['the input takes 3 features; the data has 4']);

    const tooBig = thrown(() => importLayersModel(foreignModelJson(tabular), meta, 10));
    expect(tooBig.code).toBe('too_many_parameters');
    expect(tooBig.message).toBe(`The model has ${tabular.parameters} parameters; the limit is 10`);

    const badMeta = thrown(() => importLayersModel(foreignModelJson(tabular), { task: 'classification', input_schema: {}, labels: ['only'] }));
    expect(badMeta.details).toEqual(['labels must list at least 2 class names (one per output unit)', 'input_schema.features must list the feature names in input order']);
  });

  it('imports a text model with its vocabulary, taking the sequence length from the model input', async () => {
    const text = await train({ spec: { task: 'text-classification', label: 'topic', textField: 'text' }, rows: keywordTexts(90, { seed: 2 }), hyperparameters: { epochs: 1, embedding_dim: 4, seed: 1 } });
    const pre = decodeArtifact(text.artifact).metadata.preprocessing;
    if (pre.kind !== 'text') throw new Error('text expected');
    const textMeta: ImportMeta = { task: 'text-classification', input_schema: { text_field: 'text', label: 'topic', vocabulary: pre.vocabulary }, labels: text.labels };
    const imported = importLayersModel(foreignModelJson(text), textMeta);
    expect(imported.input_schema).toEqual(text.input_schema);
    const texts = [{ text: 'alpha1 and the beta2' }];
    const [original, copy] = [await loadModel(text.artifact), await loadModel(imported.artifact)];
    expect(copy.predict(texts, { explain: true })).toEqual(original.predict(texts, { explain: true }));
    original.dispose();
    copy.dispose();
    const missing = thrown(() => importLayersModel(foreignModelJson(text), { ...textMeta, input_schema: { text_field: 'text' } }));
    expect(missing.details).toEqual(['input_schema.vocabulary must list the token of each id (id 0 pads, id 1 is out-of-vocabulary)']);
  });
});
