import { beforeAll, describe, expect, it } from '@jest/globals';
import type { MlError } from '../errors.js';
import { sequenceTextArchitecture, thrown } from '../testing.js';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { checkLoads, loadModel } from '../predict.js';
import { blobRows, keywordTexts } from '../synthetic.js';
import { train } from '../train.js';
import type { Row, TrainResult } from '../types.js';
import { decodeArtifact, readArtifact } from './format.js';
import { importArtifact, importLayersModel, inlineWeightFiles, type ImportMeta } from './import.js';

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
    tabular = await train({
      spec: { task: 'classification', label: 'label' },
      rows,
      hyperparameters: { epochs: 2, hidden_units: [5], seed: 1 },
    });
    const pre = decodeArtifact(tabular.artifact).metadata.preprocessing;
    if (pre.kind !== 'tabular') throw new Error('tabular expected');
    meta = {
      task: 'classification',
      input_schema: { features: ['x1', 'x2', 'x3'], label: 'label' },
      labels: tabular.labels,
      standardization: { mean: pre.mean, std: pre.std },
    };
  });

  it('wraps a valid upload as an artifact that predicts as the original does', async () => {
    const before = tf.memory().numTensors;
    const imported = importLayersModel(JSON.stringify(foreignModelJson(tabular)), meta, 1000);
    expect(imported.parameters).toBe(tabular.parameters);
    expect(imported.input_schema).toEqual(tabular.input_schema);
    expect(readArtifact(imported.artifact)).toMatchObject({
      parameters: tabular.parameters,
      labels: tabular.labels,
      sha256: imported.sha256,
    });
    const [original, copy] = [await loadModel(tabular.artifact), await loadModel(imported.artifact)];
    expect(await copy.predict(inputs)).toEqual(await original.predict(inputs));
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
    expect(thrown(() => inlineWeightFiles(json, { 'group1-shard1of2.bin': weights })).details).toEqual([
      "'group1-shard2of2.bin' is listed in weightsManifest but not sent",
    ]);
  });

  it('says what is wrong with a broken upload', () => {
    expect(thrown(() => importLayersModel('{"format": ', meta)).message).toBe('The model is not valid JSON');
    expect(thrown(() => importLayersModel([], meta)).message).toContain('must be a JSON object');
    const shape = thrown(() =>
      importLayersModel(
        { format: 'graph-model', weightsManifest: [{ weights: [{ name: 'w', shape: [2], dtype: 'complex64' }] }], weightData: '%%' },
        meta,
      ),
    );
    expect(shape.code).toBe('invalid_model');
    expect(shape.details).toEqual([
      `format is "graph-model", not 'layers-model'`,
      'modelTopology is missing',
      `weight 0 'w' has dtype "complex64" (float32, int32 or bool expected)`,
      'weightData is not base64',
    ]);

    const truncated = foreignModelJson(tabular);
    truncated.weightData = Buffer.from(truncated.weightData as string, 'base64')
      .subarray(8)
      .toString('base64');
    expect(thrown(() => importLayersModel(truncated, meta)).details[0]).toMatch(/^weightData holds \d+ bytes; the weight specs need \d+$/);

    const unknownLayer = foreignModelJson(tabular);
    (unknownLayer.modelTopology as { config: { layers: Array<{ class_name: string }> } }).config.layers[0].class_name = 'Lambda';
    const layerError = thrown(() => importLayersModel(unknownLayer, meta));
    expect(layerError.code).toBe('architecture_not_allowed');
    expect(layerError.message).toContain("class 'Lambda' is not allowed");

    const wider = thrown(() =>
      importLayersModel(foreignModelJson(tabular), {
        ...meta,
        input_schema: { features: ['x1', 'x2', 'x3', 'x4'] },
        standardization: undefined,
      }),
    );
    expect(wider.details).toEqual(['the input takes 3 features; the data has 4']);

    const tooBig = thrown(() => importLayersModel(foreignModelJson(tabular), meta, 10));
    expect(tooBig.code).toBe('too_many_parameters');
    expect(tooBig.message).toBe(`The model has ${tabular.parameters} parameters; the limit is 10`);

    const badMeta = thrown(() =>
      importLayersModel(foreignModelJson(tabular), { task: 'classification', input_schema: {}, labels: ['only'] }),
    );
    expect(badMeta.details).toEqual([
      'labels must list at least 2 class names (one per output unit)',
      'input_schema.features must list the feature names in input order',
    ]);
  });

  it('imports a text model with its vocabulary, taking the sequence length from the model input', async () => {
    const text = await train({
      spec: { task: 'text-classification', label: 'topic', textField: 'text' },
      rows: keywordTexts(90, { seed: 2 }),
      hyperparameters: { epochs: 1, seed: 1 },
      architecture: sequenceTextArchitecture(3, 4, 60, 16),
    });
    const pre = decodeArtifact(text.artifact).metadata.preprocessing;
    if (pre.kind !== 'text') throw new Error('text expected');
    const textMeta: ImportMeta = {
      task: 'text-classification',
      input_schema: { text_field: 'text', label: 'topic', vocabulary: pre.vocabulary },
      labels: text.labels,
    };
    const imported = importLayersModel(foreignModelJson(text), textMeta);
    expect(imported.input_schema).toEqual(text.input_schema);
    const texts = [{ text: 'alpha1 and the beta2' }];
    const [original, copy] = [await loadModel(text.artifact), await loadModel(imported.artifact)];
    expect(await copy.predict(texts, { explain: true })).toEqual(await original.predict(texts, { explain: true }));
    original.dispose();
    copy.dispose();
    const missing = thrown(() => importLayersModel(foreignModelJson(text), { ...textMeta, input_schema: { text_field: 'text' } }));
    expect(missing.details).toEqual(['input_schema.vocabulary must list the token of each id (id 0 pads, id 1 is out-of-vocabulary)']);
  });
});

describe('what an import must pass before a worker loads it, and the load itself', () => {
  const rows = blobRows(80, { features: 3, classes: 2, seed: 5 });
  let tabular: TrainResult;
  let meta: ImportMeta;
  const layer0 = (json: Record<string, unknown>) =>
    (json.modelTopology as { config: { layers: Array<{ config: Record<string, any> }> } }).config.layers[0].config;

  beforeAll(async () => {
    await initBackend('wasm');
    tabular = await train({
      spec: { task: 'classification', label: 'label' },
      rows,
      hyperparameters: { epochs: 1, hidden_units: [4], seed: 1 },
    });
    meta = { task: 'classification', input_schema: { features: ['x1', 'x2', 'x3'] }, labels: tabular.labels };
  });

  it('refuses every class TF.js cannot build, naming the layer and the key, in uploads and downloaded artifacts alike', () => {
    const json = foreignModelJson(tabular);
    Object.assign(layer0(json), {
      kernel_regularizer: { class_name: 'Custom>x', config: {} },
      bias_constraint: { class_name: 'NonNeg', config: {} },
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: { class_name: 'Custom>seed' } } },
      recurrent_activation: 'Custom>y',
    });
    expect(thrown(() => importLayersModel(json, meta)).details).toEqual([
      `layer 'hidden_1': kernel_initializer.config.seed names class "Custom>seed", which is not allowed there`,
      `layer 'hidden_1': kernel_regularizer class "Custom>x" is not allowed (allowed: L1L2)`,
      `layer 'hidden_1': recurrent_activation "Custom>y" is not one of linear, relu, relu6, elu, selu, sigmoid, hard_sigmoid, softmax, softplus, softsign, tanh, swish, mish, gelu`,
    ]);
    const own = JSON.parse(tabular.artifact.toString('utf8'));
    layer0(own).kernel_regularizer = { class_name: 'Custom>x', config: {} };
    expect(thrown(() => importArtifact(own)).message).toContain(`kernel_regularizer class "Custom>x" is not allowed`);
    let deep: Record<string, unknown> = {};
    layer0(own).kernel_regularizer = { class_name: 'L1L2', config: deep };
    for (let i = 0; i < 40; i++) deep = (deep.x = {}) as Record<string, unknown>;
    expect(thrown(() => importArtifact(own)).message).toContain('is nested more than 16 levels deep');
  });

  it('refuses weights that are not float32 or not finite, naming them', () => {
    const int32 = foreignModelJson(tabular);
    (int32.weightsManifest as Array<{ weights: Array<{ dtype: string }> }>)[0].weights[1].dtype = 'int32';
    expect(thrown(() => importLayersModel(int32, meta)).details).toEqual([
      `weight 'hidden_1/bias' has dtype int32; every weight must be float32`,
    ]);
    const own = JSON.parse(tabular.artifact.toString('utf8'));
    const bytes = Buffer.from(own.weightData, 'base64');
    bytes.writeFloatLE(Number.POSITIVE_INFINITY, bytes.length - 4);
    own.weightData = bytes.toString('base64');
    expect(thrown(() => importArtifact(own)).details).toEqual([`weight 'output/bias' holds an infinite value (at index 1)`]);
  });

  it('keeps a downloaded artifact byte for byte', () => {
    const own = JSON.parse(tabular.artifact.toString('utf8'));
    expect(importArtifact(own)).toMatchObject({
      task: 'classification',
      sha256: tabular.sha256,
      parameters: tabular.parameters,
      labels: tabular.labels,
    });
  });

  it('loads and runs valid tabular and text models once, leaving no tensors behind', async () => {
    const text = await train({
      spec: { task: 'text-classification', label: 'topic', textField: 'text' },
      rows: keywordTexts(60, { seed: 3 }),
      hyperparameters: { epochs: 1, seed: 1 },
    });
    const sequence = await train({
      spec: { task: 'text-classification', label: 'topic', textField: 'text' },
      rows: keywordTexts(60, { seed: 3 }),
      hyperparameters: { epochs: 1, seed: 1 },
      architecture: sequenceTextArchitecture(3),
    });
    const before = tf.memory().numTensors;
    await checkLoads(tabular.artifact);
    await checkLoads(text.artifact);
    await checkLoads(sequence.artifact);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names what only TF.js finds: a weight of the wrong shape, a config it cannot build, a dtype that fails at run time', async () => {
    const swapped = foreignModelJson(tabular);
    (swapped.weightsManifest as Array<{ weights: Array<{ shape: number[] }> }>)[0].weights[0].shape = [4, 3];
    const shape = await thrownAsync(() => checkLoads(importLayersModel(swapped, meta).artifact));
    expect([shape.code, shape.details]).toEqual(['invalid_model', [`weight 'hidden_1/kernel' has shape [4,3]; the layer needs [3,4]`]]);
    const init = foreignModelJson(tabular);
    layer0(init).kernel_initializer = { class_name: 'VarianceScaling', config: { mode: 'bogus' } };
    expect((await thrownAsync(() => checkLoads(importLayersModel(init, meta).artifact))).message).toMatch(
      /^TF.js cannot build the model: bogus is not a valid FanMode/,
    );
    const complex = foreignModelJson(tabular);
    layer0(complex).dtype = 'complex64';
    expect((await thrownAsync(() => checkLoads(importLayersModel(complex, meta).artifact))).message).toMatch(
      /^TF.js cannot run the model: .*complex64/,
    );
  });
});

async function thrownAsync(fn: () => Promise<unknown>): Promise<MlError> {
  try {
    await fn();
  } catch (err) {
    return err as MlError;
  }
  throw new Error('expected a rejection');
}
