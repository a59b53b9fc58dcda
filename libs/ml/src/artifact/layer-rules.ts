/** Shape inference and parameter counts of the layer classes a topology may use. */

export type Shape = Array<number | null>;
export type Config = Record<string, unknown>;

export interface LayerRule {
  /** The output shape and the parameter count, or a problem (a string). */
  infer(config: Config, inputs: Shape[]): { shape: Shape; params: number } | string;
  /** Layers that take several inputs (merges). */
  multi?: boolean;
}

export const ALLOWED_ACTIVATIONS = [
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'sigmoid',
  'hard_sigmoid',
  'softmax',
  'softplus',
  'softsign',
  'tanh',
  'swish',
  'mish',
  'gelu',
];

/** The classes TF.js 4.22 can build for each role a layer config names (`kernel_initializer`, `bias_regularizer`, …). */
export const ALLOWED_CONFIG_CLASSES: Readonly<Record<'initializer' | 'regularizer' | 'constraint', readonly string[]>> = {
  initializer: [
    'Zeros',
    'Ones',
    'Constant',
    'RandomUniform',
    'RandomNormal',
    'TruncatedNormal',
    'Identity',
    'VarianceScaling',
    'GlorotUniform',
    'GlorotNormal',
    'HeNormal',
    'HeUniform',
    'LeCunNormal',
    'LeCunUniform',
    'Orthogonal',
  ],
  regularizer: ['L1L2'],
  constraint: ['MaxNorm', 'UnitNorm', 'NonNeg', 'MinMaxNorm'],
};

/** Nesting of a layer config past which it is refused rather than walked (no layer here needs more than 4). */
const MAX_CONFIG_DEPTH = 16;

/**
 * Classes a layer config names that TF.js could not build: an initializer, regularizer or constraint
 * outside ALLOWED_CONFIG_CLASSES, an activation outside ALLOWED_ACTIVATIONS, or a `class_name`
 * anywhere else in the config. One line per problem, naming the layer and the key.
 */
export function configClassProblems(layer: string, config: Config): string[] {
  const problems: string[] = [];
  // An explicit stack, not recursion: an upload's nesting depth is the client's choice.
  const stack: Array<{ path: string; value: unknown; depth: number }> = Object.entries(config).map(([k, v]) => ({
    path: k,
    value: v,
    depth: 1,
  }));
  while (stack.length > 0) {
    const { path, value, depth } = stack.pop()!;
    if (value === null || typeof value !== 'object') {
      const key = path.slice(path.lastIndexOf('.') + 1);
      if (
        (key === 'activation' || key.endsWith('_activation')) &&
        depth === 1 &&
        value !== null &&
        !ALLOWED_ACTIVATIONS.includes(value as string)
      ) {
        problems.push(`layer '${layer}': ${path} ${JSON.stringify(value)} is not one of ${ALLOWED_ACTIVATIONS.join(', ')}`);
      }
      continue;
    }
    if (depth > MAX_CONFIG_DEPTH) {
      problems.push(`layer '${layer}': ${path} is nested more than ${MAX_CONFIG_DEPTH} levels deep`);
      continue;
    }
    const entries = Object.entries(value as Record<string, unknown>);
    const className = (value as Record<string, unknown>).class_name;
    if (className !== undefined && !Array.isArray(value)) {
      const role = (Object.keys(ALLOWED_CONFIG_CLASSES) as Array<keyof typeof ALLOWED_CONFIG_CLASSES>).find(
        (r) => depth === 1 && path.endsWith(`_${r}`),
      );
      if (!role) {
        problems.push(`layer '${layer}': ${path} names class ${JSON.stringify(className)}, which is not allowed there`);
        continue;
      }
      if (typeof className !== 'string' || !ALLOWED_CONFIG_CLASSES[role].includes(className)) {
        problems.push(
          `layer '${layer}': ${path} class ${JSON.stringify(className)} is not allowed (allowed: ${ALLOWED_CONFIG_CLASSES[role].join(', ')})`,
        );
        continue;
      }
    }
    for (const [k, v] of entries) stack.push({ path: `${path}.${k}`, value: v, depth: depth + 1 });
  }
  return problems.sort();
}

export const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const last = (s: Shape) => s[s.length - 1];
const same = (_: Config, [s]: Shape[]) => ({ shape: s, params: 0 });
const intOf = (v: unknown, fallback: number): number | null => {
  const x = Array.isArray(v) ? v[0] : (v ?? fallback);
  return isPositiveInt(x) ? x : null;
};

function activationProblem(config: Config): string | null {
  const a = config.activation ?? 'linear';
  return typeof a === 'string' && ALLOWED_ACTIVATIONS.includes(a)
    ? null
    : `activation ${JSON.stringify(a)} is not one of ${ALLOWED_ACTIVATIONS.join(', ')}`;
}

function needsRank(shape: Shape, rank: number, what: string): string | null {
  return shape.length === rank
    ? null
    : `${what} needs an input of rank ${rank} (batch included), got [${shape.map((d) => d ?? 'null').join(', ')}]`;
}

function steps(length: number | null, window: number, stride: number, padding: unknown, dilation = 1): number | null | string {
  if (padding !== undefined && padding !== 'valid' && padding !== 'same' && padding !== 'causal')
    return `padding ${JSON.stringify(padding)} is not valid, same or causal`;
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
      if (axis <= 0 || axis >= rank || !shapes.every((s) => s.length === rank))
        return 'its inputs have different ranks or the axis is out of range';
      const out = [...shapes[0]];
      for (let d = 1; d < rank; d++) {
        if (d === axis) out[d] = shapes.some((s) => s[d] === null) ? null : shapes.reduce((a, s) => a + (s[d] as number), 0);
        else if (!shapes.every((s) => s[d] === shapes[0][d])) return 'its inputs differ outside the concatenation axis';
      }
      return { shape: out, params: 0 };
    },
  };
}

export const RULES: Record<string, LayerRule> = {
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
      if (!isPositiveInt(config.input_dim) || !isPositiveInt(config.output_dim))
        return 'input_dim and output_dim must be positive integers';
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
      if (size !== null && (target.includes(-1) ? size % known !== 0 : size !== known))
        return `cannot reshape ${size} values to [${target.join(', ')}]`;
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
      if (!isPositiveInt(config.filters) || !kernel || !stride || !dilation)
        return 'filters, kernel_size, strides and dilation_rate must be positive integers';
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
