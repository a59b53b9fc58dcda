import { isMlError, MlError } from '../errors.js';
import { inputSchema } from '../data/prepare.js';
import { hashedPreprocessingProblems } from '../data/hashed-text.js';
import { OOV_TOKEN, PAD_TOKEN } from '../data/text.js';
import { TASKS, type ArtifactMetadata, type InputSchema, type Preprocessing, type Task } from '../types.js';
import {
  checkWeightSpecs,
  decodeArtifact,
  decodeBase64,
  elementCount,
  encodeArtifact,
  sha256,
  weightBytes,
  type ArtifactJson,
  type WeightSpec,
} from './format.js';
import { checkTopology } from './topology.js';

/** What an upload says about the model it carries (the rest is in its model.json). */
export interface ImportMeta {
  task: Task;
  /**
   * Tabular: `features` (names, or `{name}` objects) in the model's input order, and `label`.
   * Text: `text_field`, `label`, and `vocabulary` (the token of each id; id 0 pads, id 1 is
   * out-of-vocabulary) — the model's input length is its sequence length.
   */
  input_schema: {
    label?: string;
    features?: Array<string | { name: string }>;
    text_field?: string;
    vocabulary?: string[];
  };
  /** Classification: the class of each output unit, in order. */
  labels?: string[] | null;
  /** Tabular: the standardization the model expects (default none: mean 0, std 1). */
  standardization?: { mean: number[]; std: number[] };
}

export interface ImportResult {
  artifact: Buffer;
  sha256: string;
  parameters: number;
  architecture: Record<string, unknown>;
  input_schema: InputSchema;
  labels: string[] | null;
}

/**
 * Validates an uploaded TF.js layers model.json with inlined weights (the form of a
 * downloaded artifact) and wraps it as an artifact. No TF.js: the API can call it. Every
 * problem found is listed in one MlError (`invalid_model`, `architecture_not_allowed` or
 * `too_many_parameters`).
 */
export function importLayersModel(upload: unknown, meta: ImportMeta, maxParameters?: number): ImportResult {
  const json = parseUpload(upload);
  const problems: string[] = [];
  if (json.format !== undefined && json.format !== 'layers-model')
    problems.push(`format is ${JSON.stringify(json.format)}, not 'layers-model'`);
  if (!json.modelTopology || typeof json.modelTopology !== 'object') problems.push('modelTopology is missing');
  let specs: WeightSpec[] = [];
  if (!Array.isArray(json.weightsManifest)) problems.push('weightsManifest is missing (a list of {paths, weights})');
  else {
    specs = (json.weightsManifest as Array<{ weights?: unknown }>).flatMap((g) =>
      g && Array.isArray(g.weights) ? (g.weights as WeightSpec[]) : [],
    );
    if (!json.weightsManifest.every((g: unknown) => g && typeof g === 'object' && Array.isArray((g as { weights?: unknown }).weights))) {
      problems.push('every weightsManifest group needs a weights list');
    }
    problems.push(...checkWeightSpecs(specs));
  }
  let weightData: Uint8Array | null = null;
  if (json.weightData === undefined || json.weightData === null) {
    problems.push('weightData is missing: inline the weights as base64 in model.json (weightData), or send the weight files with it');
  } else if (typeof json.weightData !== 'string' || !(weightData = decodeBase64(json.weightData))) {
    problems.push('weightData is not base64');
  }
  if (problems.length > 0) throw MlError.list('invalid_model', 'Invalid model.json', problems);

  const expectedBytes = specs.reduce((a, s) => a + weightBytes(s), 0);
  if (weightData!.byteLength !== expectedBytes) {
    problems.push(`weightData holds ${weightData!.byteLength} bytes; the weight specs need ${expectedBytes}`);
  }
  problems.push(...weightValueProblems(specs, weightData!));
  const parameters = specs.reduce((a, s) => a + elementCount(s.shape), 0);

  const { metadata, schemaProblems } = importMetadata(meta);
  problems.push(...schemaProblems);
  if (problems.length > 0) throw MlError.list('invalid_model', 'Invalid model.json', problems);

  const pre = metadata.preprocessing;
  const report = checkTopology(json.modelTopology, {
    task: meta.task,
    inputWidth: pre.kind === 'tabular' ? pre.features.length : undefined,
    outputWidth: meta.task === 'regression' ? 1 : metadata.labels!.length,
    vocabularySize: pre.kind === 'text' ? pre.vocabulary.length : undefined,
  });
  if (report.parameters !== parameters) problems.push(`the weights hold ${parameters} parameters; the topology needs ${report.parameters}`);
  const layerNames = new Set(report.layers.map((l) => l.name));
  const strangers = specs.filter((s) => !layerNames.has(s.name.split('/')[0])).map((s) => s.name);
  if (strangers.length > 0)
    problems.push(`weights that belong to no layer: ${strangers.slice(0, 5).join(', ')}${strangers.length > 5 ? ', …' : ''}`);
  if (problems.length > 0) throw MlError.list('invalid_model', 'Invalid model.json', problems);
  if (maxParameters !== undefined && parameters > maxParameters) {
    throw new MlError('too_many_parameters', `The model has ${parameters} parameters; the limit is ${maxParameters}`);
  }
  if (pre.kind === 'text') {
    const length = report.input_shape[1];
    if (typeof length !== 'number')
      throw MlError.list('invalid_model', 'Invalid model.json', [
        'a text model needs a fixed input length (batch_input_shape [null, length])',
      ]);
    pre.sequence_length = length;
    metadata.input_schema = inputSchema({ task: meta.task, label: metadata.input_schema.label }, pre);
  }

  const artifact: ArtifactJson = {
    format: 'layers-model',
    generatedBy: typeof json.generatedBy === 'string' ? json.generatedBy : 'unknown',
    convertedBy: typeof json.convertedBy === 'string' ? json.convertedBy : null,
    modelTopology: report.topology,
    weightsManifest: [{ paths: [], weights: specs }],
    weightData: json.weightData as string,
    userDefinedMetadata: { aiaas: metadata },
  };
  const bytes = encodeArtifact(artifact);
  return {
    artifact: bytes,
    sha256: sha256(bytes),
    parameters,
    architecture: report.topology,
    input_schema: metadata.input_schema,
    labels: metadata.labels,
  };
}

/**
 * Checks a model.json downloaded from this service (it carries its preprocessing in
 * `userDefinedMetadata.aiaas`) as an upload: the same topology and weight checks as
 * `importLayersModel`, against the task and widths its own metadata declares. The artifact is
 * kept byte for byte. No TF.js.
 */
export function importArtifact(upload: unknown, maxParameters?: number): ImportResult & { task: Task } {
  const bytes = Buffer.from(JSON.stringify(parseUpload(upload)));
  let decoded: ReturnType<typeof decodeArtifact>;
  try {
    decoded = decodeArtifact(bytes);
  } catch (err) {
    throw isMlError(err) ? new MlError('invalid_model', err.message, err.details) : err;
  }
  const { metadata, weightSpecs, parameters } = decoded;
  const pre = metadata.preprocessing;
  // a head's base is pinned by the platform's training; an upload cannot vouch for the features it expects
  if (pre.kind === 'foundation') throw new MlError('invalid_model', 'An imported model cannot be a head on a foundation model');
  // convolutional layers are not in the import allowlist (ALLOWED_LAYERS)
  if (pre.kind === 'image') throw new MlError('invalid_model', 'Image models cannot be imported yet; train them here');
  const problems = weightValueProblems(weightSpecs, new Uint8Array(decoded.weightData));
  if (problems.length > 0) throw MlError.list('invalid_model', 'Invalid model.json', problems);
  if (pre.kind === 'hashed-ngrams') {
    const preProblems = hashedPreprocessingProblems(pre as unknown as Record<string, unknown>);
    if (preProblems.length > 0) throw MlError.list('invalid_model', 'Invalid model.json', preProblems);
  }
  const report = checkTopology(decoded.json.modelTopology, {
    task: metadata.task,
    inputWidth: pre.kind === 'tabular' ? pre.features.length : pre.kind === 'hashed-ngrams' ? pre.buckets : pre.sequence_length,
    outputWidth: metadata.task === 'regression' ? 1 : (metadata.labels ?? []).length,
    vocabularySize: pre.kind === 'text' ? pre.vocabulary.length : undefined,
    textInput: pre.kind === 'hashed-ngrams' ? 'features' : 'tokens',
  });
  if (report.parameters !== parameters) problems.push(`the weights hold ${parameters} parameters; the topology needs ${report.parameters}`);
  const layerNames = new Set(report.layers.map((l) => l.name));
  const strangers = weightSpecs.filter((s) => !layerNames.has(s.name.split('/')[0])).map((s) => s.name);
  if (strangers.length > 0)
    problems.push(`weights that belong to no layer: ${strangers.slice(0, 5).join(', ')}${strangers.length > 5 ? ', …' : ''}`);
  if (problems.length > 0) throw MlError.list('invalid_model', 'Invalid model.json', problems);
  if (maxParameters !== undefined && parameters > maxParameters) {
    throw new MlError('too_many_parameters', `The model has ${parameters} parameters; the limit is ${maxParameters}`);
  }
  return {
    task: metadata.task,
    artifact: bytes,
    sha256: sha256(bytes),
    parameters,
    architecture: decoded.json.modelTopology,
    input_schema: metadata.input_schema,
    labels: metadata.labels,
  };
}

/**
 * What TF.js would refuse, or serve as garbage, in weights whose byte count is right: a dtype
 * other than float32 (every weight of the layers allowed here is float32; TF.js fails the first
 * predict on another), and NaN or infinite values (looked at only where `data` holds the weight).
 * One line per weight, naming it.
 */
export function weightValueProblems(specs: WeightSpec[], data: Uint8Array): string[] {
  const problems: string[] = [];
  let offset = 0;
  for (const spec of specs) {
    const size = weightBytes(spec);
    if (spec.dtype !== 'float32') problems.push(`weight '${spec.name}' has dtype ${spec.dtype}; every weight must be float32`);
    else if (!spec.quantization && offset + size <= data.byteLength) {
      // A copy: the weight's offset in weightData need not be 4-byte aligned.
      const values = new Float32Array(data.slice(offset, offset + size).buffer);
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        problems.push(`weight '${spec.name}' holds ${Number.isNaN(values[bad]) ? 'NaN' : 'an infinite value'} (at index ${bad})`);
    }
    offset += size;
  }
  return problems;
}

/**
 * A model.json that points at weight files (`weightsManifest[].paths`), with the weights
 * inlined from `files` (path → bytes): the form `importLayersModel` takes.
 */
export function inlineWeightFiles(modelJson: unknown, files: Record<string, Uint8Array>): Record<string, unknown> {
  const json = parseUpload(modelJson);
  if (!Array.isArray(json.weightsManifest)) throw MlError.list('invalid_model', 'Invalid model.json', ['weightsManifest is missing']);
  const parts: Uint8Array[] = [];
  const missing: string[] = [];
  for (const group of json.weightsManifest as Array<{ paths?: unknown }>) {
    for (const path of Array.isArray(group?.paths) ? group.paths : []) {
      const file = files[String(path)] ?? files[String(path).replace(/^\.\//, '')];
      if (file) parts.push(file);
      else missing.push(String(path));
    }
  }
  if (missing.length > 0)
    throw MlError.list(
      'invalid_model',
      'Missing weight files',
      missing.map((p) => `'${p}' is listed in weightsManifest but not sent`),
    );
  return { ...json, weightData: Buffer.concat(parts).toString('base64') };
}

function parseUpload(upload: unknown): Record<string, unknown> {
  let value = upload;
  if (typeof value === 'string' || value instanceof Uint8Array) {
    try {
      value = JSON.parse(typeof value === 'string' ? value : Buffer.from(value).toString('utf8'));
    } catch {
      throw new MlError('invalid_model', 'The model is not valid JSON');
    }
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new MlError('invalid_model', 'The model must be a JSON object (a TF.js model.json)');
  return value as Record<string, unknown>;
}

function importMetadata(meta: ImportMeta): { metadata: ArtifactMetadata; schemaProblems: string[] } {
  const problems: string[] = [];
  const task = meta?.task;
  if (!TASKS.includes(task)) problems.push(`task must be one of ${TASKS.join(', ')}`);
  const schema = meta?.input_schema ?? {};
  const label = typeof schema.label === 'string' && schema.label !== '' ? schema.label : 'label';
  let labels: string[] | null = null;
  if (task !== 'regression') {
    const l = meta?.labels;
    if (!Array.isArray(l) || l.length < 2 || !l.every((x) => typeof x === 'string' && x !== ''))
      problems.push('labels must list at least 2 class names (one per output unit)');
    else if (new Set(l).size !== l.length) problems.push('labels must be unique');
    else labels = [...l];
  } else if (meta?.labels != null && (!Array.isArray(meta.labels) || meta.labels.length > 0)) {
    problems.push('a regression model has no labels');
  }
  let preprocessing: Preprocessing;
  if (task === 'text-classification') {
    const vocabulary = schema.vocabulary;
    if (typeof schema.text_field !== 'string' || schema.text_field === '')
      problems.push('input_schema.text_field must name the text column');
    if (!Array.isArray(vocabulary) || vocabulary.length < 3 || !vocabulary.every((t) => typeof t === 'string')) {
      problems.push('input_schema.vocabulary must list the token of each id (id 0 pads, id 1 is out-of-vocabulary)');
    }
    const vocab = Array.isArray(vocabulary) ? [PAD_TOKEN, OOV_TOKEN, ...vocabulary.slice(2).map(String)] : [];
    preprocessing = {
      kind: 'text',
      text_field: String(schema.text_field),
      tokenizer: 'lowercase-words-punctuation',
      vocabulary: vocab,
      sequence_length: 0,
      pad_id: 0,
      oov_id: 1,
    };
  } else {
    const raw = schema.features;
    const features = Array.isArray(raw)
      ? raw.map((f) => (typeof f === 'string' ? f : f && typeof f === 'object' ? f.name : undefined))
      : [];
    if (!Array.isArray(raw) || features.length === 0 || !features.every((f) => typeof f === 'string' && f !== '')) {
      problems.push('input_schema.features must list the feature names in input order');
    } else if (new Set(features).size !== features.length) problems.push('input_schema.features must be unique');
    const d = features.length;
    const st = meta?.standardization;
    const okStats = (v: unknown, positive: boolean) =>
      Array.isArray(v) && v.length === d && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
    if (st !== undefined && (!okStats(st?.mean, false) || !okStats(st?.std, true)))
      problems.push(`standardization needs mean and std (std > 0) for each of the ${d} features`);
    preprocessing = {
      kind: 'tabular',
      features: features as string[],
      mean: st?.mean ? [...st.mean] : new Array(d).fill(0),
      std: st?.std ? [...st.std] : new Array(d).fill(1),
    };
    if (task === 'regression') preprocessing.target = { mean: 0, std: 1 };
  }
  const metadata: ArtifactMetadata = { version: 1, task, preprocessing, input_schema: inputSchema({ task, label }, preprocessing), labels };
  return { metadata, schemaProblems: problems };
}
