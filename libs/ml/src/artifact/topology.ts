import { MlError } from '../errors.js';
import type { Task } from '../types.js';
import { ALLOWED_LAYERS, configClassProblems, isPositiveInt, RULES, type Config, type Shape } from './layer-rules.js';

export { ALLOWED_ACTIVATIONS, ALLOWED_LAYERS } from './layer-rules.js';

/**
 * Checks a TF.js layers topology without TF.js: allowed layer types, shapes layer by layer,
 * input and output widths for the task, and the parameter count. The API runs it when a job
 * or an upload arrives; the worker runs it again before building the model, then counts the
 * built model's parameters.
 */

export interface TopologyRequirements {
  task: Task;
  /** Tabular: the number of features; text: the sequence length when known. */
  inputWidth?: number;
  /** Classes for classification; 1 for regression. */
  outputWidth?: number;
  /** Text: the vocabulary that the embedding must cover, when known. */
  vocabularySize?: number;
  /** Text: `tokens` (default) is read through an Embedding; `features` (hashed n-grams) is a vector of inputWidth. */
  textInput?: 'tokens' | 'features';
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
    if (typeof className !== 'string' || !cfg || typeof cfg !== 'object') {
      problems.push(`layer ${i} is not {class_name, config}`);
      return;
    }
    if (!ALLOWED_LAYERS.includes(className)) {
      problems.push(`layer '${name}': class '${className}' is not allowed (allowed: ${ALLOWED_LAYERS.join(', ')})`);
      return;
    }
    problems.push(...configClassProblems(name, cfg));
    layers.push({ class_name: className, name, config: cfg, inbound: kind === 'Sequential' ? [] : inboundNames(l, name, problems) });
  });
  if (problems.length > 0) throw MlError.list('architecture_not_allowed', 'Architecture not allowed', problems);

  if (kind === 'Sequential' && req.fillInputShape) {
    const first = layers[0].config;
    if (!first.batch_input_shape && !first.batch_shape && layers[0].class_name !== 'InputLayer')
      first.batch_input_shape = [null, req.inputWidth ?? null];
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
  if (shape.length !== 2)
    problems.push(`the input must be a batch of vectors [null, width], got [${shape.map((d) => d ?? 'null').join(', ')}]`);
  else if (req.inputWidth !== undefined && shape[1] !== null && shape[1] !== req.inputWidth) {
    problems.push(
      req.task === 'text-classification' && req.textInput !== 'features'
        ? `the input takes ${shape[1]} tokens; the data's sequence length is ${req.inputWidth}`
        : `the input takes ${shape[1]} features; the data has ${req.inputWidth}`,
    );
  }
  if (req.task === 'text-classification' && req.textInput === 'features') {
    if (embedding) problems.push('a text model over hashed n-gram features cannot have an Embedding layer');
  } else if (req.task === 'text-classification') {
    if (!embedding) problems.push('a text model needs an Embedding layer reading the input');
    else if (req.vocabularySize !== undefined && embedding.input_dim < req.vocabularySize) {
      problems.push(`the embedding covers ${embedding.input_dim} token ids; the vocabulary has ${req.vocabularySize}`);
    }
  } else if (embedding) problems.push('a tabular model cannot have an Embedding layer');
  if (outputShape) {
    if (outputShape.length !== 2)
      problems.push(`the output must be [null, width], got [${outputShape.map((d) => d ?? 'null').join(', ')}]`);
    else if (req.outputWidth !== undefined && outputShape[1] !== req.outputWidth) {
      problems.push(
        req.task === 'regression'
          ? `the output has width ${outputShape[1]}; regression needs 1`
          : `the output has ${outputShape[1]} units; the data has ${req.outputWidth} classes`,
      );
    }
    if (req.task !== 'regression' && !endsWithSoftmax(layers, outputName!))
      problems.push('a classifier must end with a softmax activation');
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
  return (
    layer.class_name === 'Softmax' ||
    ((layer.class_name === 'Dense' || layer.class_name === 'Activation') && layer.config.activation === 'softmax')
  );
}
