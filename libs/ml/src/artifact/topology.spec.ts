import { beforeAll, describe, expect, it } from '@jest/globals';
import { thrown } from '../testing.js';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { checkTopology, type TopologyRequirements } from './topology.js';

const dense = (name: string, units: number, activation = 'relu', extra: Record<string, unknown> = {}) => ({
  class_name: 'Dense',
  config: { name, units, activation, ...extra },
});
const sequential = (...layers: unknown[]) => ({ class_name: 'Sequential', config: { name: 'm', layers } });

/** Topologies made by TF.js itself, so that the counts are checked against `countParams()`. */
function tfModels(): Array<[string, tf.LayersModel, TopologyRequirements]> {
  const conv = tf.sequential();
  conv.add(tf.layers.embedding({ inputDim: 50, outputDim: 8, inputLength: 12 }));
  conv.add(tf.layers.conv1d({ filters: 6, kernelSize: 3, activation: 'relu' }));
  conv.add(tf.layers.maxPooling1d({ poolSize: 2 }));
  conv.add(tf.layers.conv1d({ filters: 4, kernelSize: 2, padding: 'same', strides: 2 }));
  conv.add(tf.layers.globalMaxPooling1d());
  conv.add(tf.layers.dense({ units: 3, activation: 'softmax' }));

  const rnn = tf.sequential();
  rnn.add(tf.layers.embedding({ inputDim: 40, outputDim: 5, inputLength: 7 }));
  rnn.add(tf.layers.lstm({ units: 4, returnSequences: true }));
  rnn.add(tf.layers.gru({ units: 3 }));
  rnn.add(tf.layers.dense({ units: 2, activation: 'softmax' }));

  const mlp = tf.sequential();
  mlp.add(tf.layers.dense({ inputShape: [6], units: 10, activation: 'relu' }));
  mlp.add(tf.layers.batchNormalization());
  mlp.add(tf.layers.dropout({ rate: 0.2 }));
  mlp.add(tf.layers.layerNormalization());
  mlp.add(tf.layers.dense({ units: 1, useBias: false }));

  const input = tf.input({ shape: [5] });
  const a = tf.layers.dense({ units: 3, activation: 'tanh' }).apply(input) as tf.SymbolicTensor;
  const b = tf.layers.dense({ units: 4 }).apply(input) as tf.SymbolicTensor;
  const joined = tf.layers.concatenate().apply([a, b]) as tf.SymbolicTensor;
  const reshaped = tf.layers.reshape({ targetShape: [7, 1] }).apply(joined) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(reshaped) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 2, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
  const functional = tf.model({ inputs: input, outputs: output });

  return [
    ['a convolutional text model', conv, { task: 'text-classification', inputWidth: 12, outputWidth: 3, vocabularySize: 50 }],
    ['a recurrent text model', rnn, { task: 'text-classification', inputWidth: 7, outputWidth: 2 }],
    ['an MLP with normalization', mlp, { task: 'regression', inputWidth: 6, outputWidth: 1 }],
    ['a functional model with a merge', functional, { task: 'classification', inputWidth: 5, outputWidth: 2 }],
  ];
}

describe('topology checks', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('counts the parameters as TF.js does, for every allowed kind of layer', () => {
    for (const [name, model, req] of tfModels()) {
      const report = checkTopology(model.toJSON(null, false), req);
      expect([name, report.parameters]).toEqual([name, model.countParams()]);
      expect(report.output_shape).toEqual(model.outputs[0].shape);
      model.dispose();
    }
  });

  it('accepts a model.json wrapper, and fills in a missing input shape when asked', () => {
    const topology = sequential(dense('h', 4), dense('out', 2, 'softmax'));
    const report = checkTopology(
      { modelTopology: topology },
      { task: 'classification', inputWidth: 3, outputWidth: 2, fillInputShape: true },
    );
    expect(report.parameters).toBe(3 * 4 + 4 + 4 * 2 + 2);
    expect((report.topology.config as { layers: Array<{ config: Record<string, unknown> }> }).layers[0].config.batch_input_shape).toEqual([
      null,
      3,
    ]);
    expect(report.kind).toBe('Sequential');
  });

  it('refuses layer classes outside the allowed list, naming them', () => {
    const error = thrown(() =>
      checkTopology(sequential(dense('h', 4, 'relu', { batch_input_shape: [null, 3] }), { class_name: 'Lambda', config: { name: 'l' } }), {
        task: 'regression',
      }),
    );
    expect(error.code).toBe('architecture_not_allowed');
    expect(error.message).toContain("layer 'l': class 'Lambda' is not allowed");
    expect(thrown(() => checkTopology({ class_name: 'Bogus', config: {} }, { task: 'regression' })).message).toContain(
      "'Bogus' is not allowed",
    );
    expect(thrown(() => checkTopology('nonsense', { task: 'regression' })).message).toContain('{class_name, config}');
  });

  it('checks input and output widths, the softmax and the activations against the task', () => {
    const topology = sequential(dense('h', 4, 'relu', { batch_input_shape: [null, 3] }), dense('out', 2, 'linear'));
    const error = thrown(() => checkTopology(topology, { task: 'classification', inputWidth: 5, outputWidth: 3 }));
    expect(error.details).toEqual([
      'the input takes 3 features; the data has 5',
      'the output has 2 units; the data has 3 classes',
      'a classifier must end with a softmax activation',
    ]);
    const activation = thrown(() =>
      checkTopology(sequential(dense('h', 4, 'evil', { batch_input_shape: [null, 3] })), { task: 'regression' }),
    );
    expect(activation.details[0]).toMatch(/^layer 'h': activation "evil" is not one of/);
  });

  it('refuses a text model without an embedding of the whole vocabulary', () => {
    const noEmbedding = sequential(dense('h', 2, 'softmax', { batch_input_shape: [null, 8] }));
    expect(thrown(() => checkTopology(noEmbedding, { task: 'text-classification' })).details).toEqual([
      'a text model needs an Embedding layer reading the input',
    ]);
    const small = sequential(
      { class_name: 'Embedding', config: { name: 'e', input_dim: 10, output_dim: 4, batch_input_shape: [null, 8] } },
      { class_name: 'GlobalAveragePooling1D', config: { name: 'p' } },
      dense('out', 2, 'softmax'),
    );
    expect(thrown(() => checkTopology(small, { task: 'text-classification', vocabularySize: 11 })).details).toEqual([
      'the embedding covers 10 token ids; the vocabulary has 11',
    ]);
    expect(checkTopology(small, { task: 'text-classification', vocabularySize: 10 }).embedding).toEqual({
      name: 'e',
      input_dim: 10,
      output_dim: 4,
    });
  });

  it('refuses more parameters than the limit, before anything is built', () => {
    const huge = sequential(dense('h', 4096, 'relu', { batch_input_shape: [null, 4096] }), dense('h2', 4096), dense('out', 1, 'linear'));
    const error = thrown(() => checkTopology(huge, { task: 'regression', maxParameters: 1_000_000 }));
    expect(error.code).toBe('too_many_parameters');
    expect(error.message).toBe('The model has 33566721 parameters; the limit is 1000000');
  });

  it('refuses shared layers and inputs that come from nowhere', () => {
    const shared = {
      class_name: 'Model',
      config: {
        name: 'm',
        layers: [
          { name: 'in', class_name: 'InputLayer', config: { name: 'in', batch_input_shape: [null, 3] }, inbound_nodes: [] },
          {
            name: 'd',
            class_name: 'Dense',
            config: { name: 'd', units: 3, activation: 'linear' },
            inbound_nodes: [[['in', 0, 0, {}]], [['d', 0, 0, {}]]],
          },
          { name: 'x', class_name: 'Dense', config: { name: 'x', units: 1, activation: 'linear' }, inbound_nodes: [[['ghost', 0, 0, {}]]] },
        ],
        input_layers: [['in', 0, 0]],
        output_layers: [['x', 0, 0]],
      },
    };
    const error = thrown(() => checkTopology(shared, { task: 'regression' }));
    expect(error.details).toContain("layer 'd' is shared (called 2 times), which is not supported");
  });
});
