import { MlError } from '../errors.js';
import type { Task } from '../types.js';

/**
 * Checks a TF.js layers topology without TF.js: allowed layer types, shapes layer by layer,
 * input and output widths for the task, and the parameter count. The API runs it when a job
 * or an upload arrives; the worker runs it again before building the model, then counts the
 * built model's parameters.
 */

type Shape = Array<number | null>;
type Config = Record<string, unknown>;

interface LayerRule {
  /** The output shape and the parameter count, or a problem (a string). */
  infer(config: Config, inputs: Shape[]): { shape: Shape; params: number } | string;
  /** Layers that take several inputs (merges). */
  multi?: boolean;
}

export const ALLOWED_ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hard_sigmoid', 'softmax', 'softplus', 'softsign', 'tanh', 'swish', 'mish', 'gelu'];

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const last = (s: Shape) => s[s.length - 1];
const same = (_: Config, [s]: Shape[]) => ({ shape: s, params: 0 });
const intOf = (v: unknown, fallback: number): number | null => {
  const x = Array.isArray(v) ? v[0] : (v ?? fallback);
  return isPositiveInt(x) ? x : null;
};

function activationProblem(config: Config): string | null {
  const a = config.activation ?? 'linear';
  return typeof a === 'string' && ALLOWED_ACTIVATIONS.includes(a) ? null : `activation ${JSON.stringify(a)} is not one of ${ALLOWED_ACTIVATIONS.join(', ')}`;
}

function needsRank(shape: Shape, rank: number, what: string): string | null {
  return shape.length === rank ? null : `${what} needs an input of rank ${rank} (batch included), got [${shape.map((d) => d ?? 'null').join(', ')}]`;
}

function steps(length: number | null, window: number, stride: number, padding: unknown, dilation = 1): number | null | string {
  if (padding !== undefined && padding !== 'valid' && padding !== 'same' && padding !== 'causal') return `padding ${JSON.stringify(padding)} is not valid, same or causal`;
  if (length === null) return null;
  if (padding === 'same' || padding === 'causal') return Math.ceil(length / stride);
  const out = Math.floor((length - (window - 1) * dilation - 1) / stride) + 1;
  return out > 0 ? out : `the window (${window}) is longer than the input (${length})`;
}

function rnn(gates: number): LayerRule {
  return {
    infer(config, [s]) {
      const units = config.units;
      if (!isPositiveInt(units)) return 'units must be a positive integer';
      const rank = needsRank(s, 3, 'a recurrent layer');
      if (rank) return rank;
      const c = last(s);
      if (c === null) return 'the input width must be known';
      const bias = config.use_bias === false ? 0 : units;
      return { shape: config.return_sequences ? [s[0], s[1], units] : [s[0], units], params: gates * (units * (c + units) + bias) };
    },
  };
}

function merge(kind: 'concat' | 'elementwise'): LayerRule {
  return {
    multi: true,
    infer(config, shapes) {
      if (shapes.length < 2) return 'a merge layer needs at least two inputs';
      if (kind === 'elementwise') {
        const key = JSON.stringify(shapes[0]);
        return shapes.every((s) => JSON.stringify(s) === key) ? { shape: shapes[0], params: 0 } : 'its inputs have different shapes';
      }
      const rank = shapes[0].length;
      const axis = typeof config.axis === 'number' ? (config.axis < 0 ? rank + config.axis : config.axis) : rank - 1;
      if (axis <= 0 || axis >= rank || !shapes.every((s) => s.length === rank)) return 'its inputs have different ranks or the axis is out of range';
      const out = [...shapes[0]];
      for (let d = 1; d < rank; d++) {
        if (d === axis) out[d] = shapes.some((s) => s[d] === null) ? null : shapes.reduce((a, s) => a + (s[d] as number), 0);
        else if (!shapes.every((s) => s[d] === shapes[0][d])) return 'its inputs differ outside the concatenation axis';
      }
      return { shape: out, params: 0 };
    },
  };
}

const RULES: Record<string, LayerRule> = {
  Dense: {
    infer(config, [s]) {
      if (!isPositiveInt(config.units)) return 'units must be a positive integer';
      const a = activationProblem(config);
      if (a) return a;
      const d = last(s);
      if (d === null || s.length < 2) return 'the input width must be known';
      return { shape: [...s.slice(0, -1), config.units], params: d * config.units + (config.use_bias === false ? 0 : config.units) };
    },
  },
  Embedding: {
    infer(config, [s]) {
      if (!isPositiveInt(config.input_dim) || !isPositiveInt(config.output_dim)) return 'input_dim and output_dim must be positive integers';
      if (config.mask_zero) return 'mask_zero is not supported (pooling layers here ignore masks)';
      return { shape: [...s, config.output_dim], params: config.input_dim * config.output_dim };
    },
  },
  Dropout: { infer: same },
  SpatialDropout1D: { infer: same },
  GaussianNoise: { infer: same },
  GaussianDropout: { infer: same },
  AlphaDropout: { infer: same },
  ReLU: { infer: same },
  LeakyReLU: { infer: same },
  ELU: { infer: same },
  Softmax: { infer: same },
  Activation: {
    infer(config, [s]) {
      return activationProblem(config) ?? { shape: s, params: 0 };
    },
  },
  BatchNormalization: {
    infer(config, [s]) {
      const axis = typeof config.axis === 'number' ? config.axis : -1;
      const c = s[axis < 0 ? s.length + axis : axis];
      if (c === null || c === undefined) return 'the normalized axis must have a known width';
      return { shape: s, params: c * (2 + (config.center === false ? 0 : 1) + (config.scale === false ? 0 : 1)) };
    },
  },
  LayerNormalization: {
    infer(config, [s]) {
      const c = last(s);
      if (c === null) return 'the input width must be known';
      return { shape: s, params: c * ((config.center === false ? 0 : 1) + (config.scale === false ? 0 : 1)) };
    },
  },
  Flatten: {
    infer(_, [s]) {
      const rest = s.slice(1);
      return { shape: [s[0], rest.some((d) => d === null) ? null : (rest as number[]).reduce((a, b) => a * b, 1)], params: 0 };
    },
  },
  Reshape: {
    infer(config, [s]) {
      const target = config.target_shape;
      if (!Array.isArray(target) || !target.every((d) => d === -1 || isPositiveInt(d)) || target.filter((d) => d === -1).length > 1) {
        return 'target_shape must be a list of positive integers (one -1 at most)';
      }
      const size = s.slice(1).every((d) => d !== null) ? (s.slice(1) as number[]).reduce((a, b) => a * b, 1) : null;
      const known = (target as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      if (size !== null && (target.includes(-1) ? size % known !== 0 : size !== known)) return `cannot reshape ${size} values to [${target.join(', ')}]`;
      return { shape: [s[0], ...(target as number[]).map((d) => (d === -1 ? (size === null ? null : size / known) : d))], params: 0 };
    },
  },
  GlobalAveragePooling1D: {
    infer(_, [s]) {
      return needsRank(s, 3, 'GlobalAveragePooling1D') ?? { shape: [s[0], s[2]], params: 0 };
    },
  },
  GlobalMaxPooling1D: {
    infer(_, [s]) {
      return needsRank(s, 3, 'GlobalMaxPooling1D') ?? { shape: [s[0], s[2]], params: 0 };
    },
  },
  Conv1D: {
    infer(config, [s]) {
      const rank = needsRank(s, 3, 'Conv1D');
      if (rank) return rank;
      const kernel = intOf(config.kernel_size, 0);
      const stride = intOf(config.strides, 1);
      const dilation = intOf(config.dilation_rate, 1);
      if (!isPositiveInt(config.filters) || !kernel || !stride || !dilation) return 'filters, kernel_size, strides and dilation_rate must be positive integers';
      const a = activationProblem(config);
      if (a) return a;
      const c = s[2];
      if (c === null) return 'the input width must be known';
      const out = steps(s[1], kernel, stride, config.padding, dilation);
      if (typeof out === 'string') return out;
      return { shape: [s[0], out, config.filters], params: kernel * c * config.filters + (config.use_bias === false ? 0 : config.filters) };
    },
  },
  MaxPooling1D: { infer: pooling },
  AveragePooling1D: { infer: pooling },
  SimpleRNN: rnn(1),
  GRU: rnn(3),
  LSTM: rnn(4),
  Concatenate: merge('concat'),
  Add: merge('elementwise'),
  Average: merge('elementwise'),
  Multiply: merge('elementwise'),
  Maximum: merge('elementwise'),
  Minimum: merge('elementwise'),
};

function pooling(config: Config, [s]: Shape[]): { shape: Shape; params: number } | string {
  const rank = needsRank(s, 3, 'a 1D pooling layer');
  if (rank) return rank;
  const pool = intOf(config.pool_size, 2);
  const stride = config.strides === null || config.strides === undefined ? pool : intOf(config.strides, 1);
  if (!pool || !stride) return 'pool_size and strides must be positive integers';
  const out = steps(s[1], pool, stride, config.padding);
  return typeof out === 'string' ? out : { shape: [s[0], out, s[2]], params: 0 };
}

export const ALLOWED_LAYERS = ['InputLayer', ...Object.keys(RULES)];

export interface TopologyRequirements {
  task: Task;
  /** Tabular: the number of features; text: the sequence length when known. */
  inputWidth?: number;
  /** Classes for classification; 1 for regression. */
  outputWidth?: number;
  /** Text: the vocabulary that the embedding must cover, when known. */
  vocabularySize?: number;
  maxParameters?: number;
  /** Put `batch_input_shape: [null, inputWidth]` (`[null, null]` without a width) on a Sequential first layer that has none. */
  fillInputShape?: boolean;
}

export interface TopologyReport {
  /** The topology to build: normalized to `{class_name, config}`, input shape filled in when asked. */
  topology: Record<string, unknown>;
  kind: 'Sequential' | 'Model';
  layers: Array<{ name: string; class_name: string; output_shape: Shape; parameters: number }>;
  parameters: number;
  input_shape: Shape;
  output_shape: Shape;
  /** The embedding that reads the input (text models). */
  embedding: { name: string; input_dim: number; output_dim: number } | null;
}

/** Accepts `{class_name, config}`, a model.json (`{modelTopology}`) or a Keras save (`{model_config}`). */
export function normalizeTopology(input: unknown): Record<string, unknown> {
  let t = input as Record<string, unknown> | null;
  if (t && typeof t === 'object' && 'modelTopology' in t) t = t.modelTopology as Record<string, unknown>;
  if (t && typeof t === 'object' && 'model_config' in t) t = t.model_config as Record<string, unknown>;
  if (!t || typeof t !== 'object' || Array.isArray(t) || typeof t.class_name !== 'string' || !t.config || typeof t.config !== 'object') {
    throw new MlError('architecture_not_allowed', 'The architecture must be a TF.js layers topology: {class_name, config}');
  }
  // A JSON round trip (not structuredClone): plain objects of this realm, as TF.js deserialization expects.
  return JSON.parse(JSON.stringify(t));
}

interface RawLayer {
  class_name: string;
  name: string;
  config: Config;
  inbound: string[];
}

/** Checks a topology for a task; one MlError lists every problem found. */
export function checkTopology(input: unknown, req: TopologyRequirements): TopologyReport {
  const topology = normalizeTopology(input);
  const problems: string[] = [];
  const kind = topology.class_name;
  if (kind !== 'Sequential' && kind !== 'Model' && kind !== 'Functional') {
    throw new MlError('architecture_not_allowed', `The model class '${String(kind)}' is not allowed (Sequential or Model)`);
  }
  const config = topology.config as Config;
  const rawLayers = (Array.isArray(config) ? config : config.layers) as unknown;
  if (!Array.isArray(rawLayers) || rawLayers.length === 0) throw new MlError('architecture_not_allowed', 'The topology has no layers');
  if (rawLayers.length > 200) throw new MlError('architecture_not_allowed', `The topology has ${rawLayers.length} layers (200 at most)`);

  const layers: RawLayer[] = [];
  rawLayers.forEach((l, i) => {
    const className = l?.class_name;
    const cfg = l?.config;
    const name = typeof cfg?.name === 'string' ? cfg.name : typeof l?.name === 'string' ? l.name : `layer ${i}`;
    if (typeof className !== 'string' || !cfg || typeof cfg !== 'object') return problems.push(`layer ${i} is not {class_name, config}`);
    if (!ALLOWED_LAYERS.includes(className)) return problems.push(`layer '${name}': class '${className}' is not allowed (allowed: ${ALLOWED_LAYERS.join(', ')})`);
    layers.push({ class_name: className, name, config: cfg, inbound: kind === 'Sequential' ? [] : inboundNames(l, name, problems) });
  });
  if (problems.length > 0) throw MlError.list('architecture_not_allowed', 'Architecture not allowed', problems);

  if (kind === 'Sequential' && req.fillInputShape) {
    const first = layers[0].config;
    if (!first.batch_input_shape && !first.batch_shape && layers[0].class_name !== 'InputLayer') first.batch_input_shape = [null, req.inputWidth ?? null];
  }

  const outputs = new Map<string, Shape>();
  const report: TopologyReport['layers'] = [];
  let inputName: string | null = null;
  let inputShape: Shape | null = null;
  let previous: string | null = null;
  let embedding: TopologyReport['embedding'] = null;
  for (const layer of layers) {
    const { config: cfg, name } = layer;
    if (outputs.has(name)) {
      problems.push(`layer name '${name}' is used twice`);
      break;
    }
    const declared = (cfg.batch_input_shape ?? cfg.batch_shape) as unknown;
    let inShapes: Shape[];
    if (layer.class_name === 'InputLayer' || (kind === 'Sequential' && previous === null)) {
      if (inputShape) {
        problems.push(`layer '${name}': only one input is allowed`);
        break;
      }
      if (!Array.isArray(declared) || declared.length < 2 || !declared.slice(1).every((d) => d === null || isPositiveInt(d))) {
        problems.push(`layer '${name}': the first layer needs batch_input_shape [null, ...]`);
        break;
      }
      inputShape = [null, ...(declared.slice(1) as Shape)];
      inputName = name;
      if (layer.class_name === 'InputLayer') {
        outputs.set(name, inputShape);
        report.push({ name, class_name: 'InputLayer', output_shape: inputShape, parameters: 0 });
        previous = name;
        continue;
      }
      inShapes = [inputShape];
    } else if (kind === 'Sequential') {
      inShapes = [outputs.get(previous!)!];
    } else {
      const missing = layer.inbound.filter((n) => !outputs.has(n));
      if (layer.inbound.length === 0 || missing.length > 0) {
        problems.push(`layer '${name}': its inputs ${missing.length ? `(${missing.join(', ')}) ` : ''}are not earlier layers`);
        break;
      }
      inShapes = layer.inbound.map((n) => outputs.get(n)!);
    }
    const rule = RULES[layer.class_name];
    if (!rule.multi && inShapes.length !== 1) {
      problems.push(`layer '${name}' takes one input, got ${inShapes.length}`);
      break;
    }
    const result = rule.infer(cfg, inShapes);
    if (typeof result === 'string') {
      problems.push(`layer '${name}' (${layer.class_name}): ${result}`);
      break;
    }
    if (layer.class_name === 'Embedding') {
      const readsInput = kind === 'Sequential' ? previous === null || previous === inputName : layer.inbound[0] === inputName;
      if (!readsInput || embedding) problems.push(`layer '${name}': an Embedding must read the model input, once`);
      embedding = { name, input_dim: cfg.input_dim as number, output_dim: cfg.output_dim as number };
    }
    outputs.set(name, result.shape);
    report.push({ name, class_name: layer.class_name, output_shape: result.shape, parameters: result.params });
    previous = name;
  }
  if (problems.length > 0) throw MlError.list('architecture_not_allowed', 'Architecture not allowed', problems);

  const outputName = kind === 'Sequential' ? previous! : outputNameOf(config, problems);
  const outputShape = outputName ? outputs.get(outputName) : undefined;
  if (outputName && !outputShape) problems.push(`the output layer '${outputName}' is not a layer of the model`);
  if (kind !== 'Sequential') {
    const inputs = config.input_layers;
    if (!Array.isArray(inputs) || inputs.length !== 1) problems.push('the model must have exactly one input');
  }
  const shape = inputShape!;
  if (shape.length !== 2) problems.push(`the input must be a batch of vectors [null, width], got [${shape.map((d) => d ?? 'null').join(', ')}]`);
  else if (req.inputWidth !== undefined && shape[1] !== null && shape[1] !== req.inputWidth) {
    problems.push(
      req.task === 'text-classification'
        ? `the input takes ${shape[1]} tokens; the data's sequence length is ${req.inputWidth}`
        : `the input takes ${shape[1]} features; the data has ${req.inputWidth}`,
    );
  }
  if (req.task === 'text-classification') {
    if (!embedding) problems.push('a text model needs an Embedding layer reading the input');
    else if (req.vocabularySize !== undefined && embedding.input_dim < req.vocabularySize) {
      problems.push(`the embedding covers ${embedding.input_dim} token ids; the vocabulary has ${req.vocabularySize}`);
    }
  } else if (embedding) problems.push('a tabular model cannot have an Embedding layer');
  if (outputShape) {
    if (outputShape.length !== 2) problems.push(`the output must be [null, width], got [${outputShape.map((d) => d ?? 'null').join(', ')}]`);
    else if (req.outputWidth !== undefined && outputShape[1] !== req.outputWidth) {
      problems.push(
        req.task === 'regression' ? `the output has width ${outputShape[1]}; regression needs 1` : `the output has ${outputShape[1]} units; the data has ${req.outputWidth} classes`,
      );
    }
    if (req.task !== 'regression' && !endsWithSoftmax(layers, outputName!)) problems.push('a classifier must end with a softmax activation');
  }
  const parameters = report.reduce((a, l) => a + l.parameters, 0);
  if (problems.length > 0) throw MlError.list('architecture_not_allowed', 'Architecture not allowed', problems);
  if (req.maxParameters !== undefined && parameters > req.maxParameters) {
    throw new MlError('too_many_parameters', `The model has ${parameters} parameters; the limit is ${req.maxParameters}`);
  }
  return {
    topology,
    kind: kind === 'Sequential' ? 'Sequential' : 'Model',
    layers: report,
    parameters,
    input_shape: shape,
    output_shape: outputShape ?? [],
    embedding,
  };
}

function inboundNames(layer: Record<string, unknown>, name: string, problems: string[]): string[] {
  const nodes = layer.inbound_nodes;
  if (!Array.isArray(nodes)) {
    problems.push(`layer '${name}' has no inbound_nodes`);
    return [];
  }
  if (nodes.length > 1) problems.push(`layer '${name}' is shared (called ${nodes.length} times), which is not supported`);
  const node = nodes[0];
  if (node === undefined) return [];
  if (!Array.isArray(node) || !node.every((t) => Array.isArray(t) && typeof t[0] === 'string' && (t[1] ?? 0) === 0)) {
    problems.push(`layer '${name}' has inbound_nodes in an unknown form`);
    return [];
  }
  return node.map((t) => t[0] as string);
}

function outputNameOf(config: Config, problems: string[]): string | null {
  const outputs = config.output_layers;
  if (!Array.isArray(outputs) || outputs.length !== 1 || !Array.isArray(outputs[0]) || typeof outputs[0][0] !== 'string') {
    problems.push('the model must have exactly one output');
    return null;
  }
  return outputs[0][0];
}

function endsWithSoftmax(layers: RawLayer[], outputName: string): boolean {
  const layer = layers.find((l) => l.name === outputName);
  if (!layer) return false;
  return layer.class_name === 'Softmax' || ((layer.class_name === 'Dense' || layer.class_name === 'Activation') && layer.config.activation === 'softmax');
}
