import { MlError } from '../errors.js';
import { shuffleInPlace } from '../random.js';
import type {
  ArtifactMetadata,
  DatasetSpec,
  HashedNgramPreprocessing,
  InputSchema,
  Preprocessing,
  Row,
  TabularPreprocessing,
  TextPreprocessing,
} from '../types.js';
import { checkImageBytes, decodeRgb, fitImage, ImageProblem, imageBytes, imagePixels } from './image.js';
import { tfidf, type SparseVector } from './hashed-ngrams.js';
import { decodeIdf, fitHashedText, HASHED_DEFAULTS, hashedOptions, SparseRowsBuilder, textCounts, type SparseRows } from './hashed-text.js';
import { buildVocabulary, chooseSequenceLength, encodeTokens, tokenize, vocabularyIndex } from './text.js';
import { describeValue, labelValue, numericValue, Problems, sortLabels } from './values.js';

/**
 * Model-ready arrays: `x` is row-major `n × width`, or empty when the rows are `sparse` (hashed
 * n-grams: densified a few rows at a time); `y` holds class indices or (standardized) targets.
 */
export interface EncodedData {
  n: number;
  width: number;
  /** Images from scratch: bytes per pixel and channel, multiplied by `scale` as they enter the model. */
  x: Float32Array | Int32Array | Uint8Array;
  scale?: number;
  sparse?: SparseRows;
  y: Float32Array | null;
  /** Text: the tokens of each row (for explanations), when asked for. */
  tokens?: string[][];
  /** Heads on a foundation model: the raw text of each row; `x` is empty until the base's features are computed. */
  texts?: string[];
  /** Heads on an image foundation model: the encoded bytes of each row's image. */
  images?: Uint8Array[];
}

export interface PreparedData {
  train: EncodedData;
  validation: EncodedData | null;
  metadata: ArtifactMetadata;
}

export interface PrepareOptions {
  validationSplit: number;
  random: () => number;
  maxVocabulary?: number;
  sequenceLength?: number;
  /** Text: `hashed-ngrams` (the preset) reads every token; `sequence` (Embedding architectures) a vocabulary's ids. */
  textModel?: 'hashed-ngrams' | 'sequence';
  /** Hashed n-grams: the feature width (default 32,768) and the longest n-gram (default 1). */
  buckets?: number;
  ngrams?: number;
  /** Fine-tuning: encode with the base's preprocessing and labels instead of fitting new ones. */
  base?: ArtifactMetadata;
}

/**
 * Checks the rows, splits them (seeded), fits the preprocessing on the training split only and
 * encodes both splits.
 */
export function prepareTraining(spec: DatasetSpec, rows: Row[], options: PrepareOptions): PreparedData {
  checkSpec(spec, rows);
  const order = Int32Array.from({ length: rows.length }, (_, i) => i);
  shuffleInPlace(order, options.random);
  let nVal = Math.round(rows.length * options.validationSplit);
  if (nVal >= rows.length) nVal = rows.length - 1;
  const trainIdx = Array.from(order.subarray(nVal)).sort((a, b) => a - b);
  const valIdx = Array.from(order.subarray(0, nVal)).sort((a, b) => a - b);
  const trainRows = trainIdx.map((i) => rows[i]);
  const valRows = valIdx.map((i) => rows[i]);
  const rowNumbers = (idx: number[]) => (k: number) => idx[k] + 1;

  const labels = spec.task === 'regression' ? null : options.base ? options.base.labels : fitLabels(spec, rows);
  if (options.base) checkBase(spec, options.base, rows);
  // Hashed n-grams: the training rows are tokenized and counted once, for the IDF and for their encoding.
  let trainCounts: SparseVector[] | undefined;
  let preprocessing: Preprocessing;
  if (options.base) preprocessing = options.base.preprocessing;
  else if (spec.task === 'image-classification') preprocessing = fitImage(imageField(spec), trainRows, rowNumbers(trainIdx));
  else if (spec.task !== 'text-classification') preprocessing = fitTabular(spec, rows, trainRows);
  else if (options.textModel === 'sequence') preprocessing = fitText(spec, trainRows, options);
  else {
    const fitted = fitHashed(spec, trainRows, options);
    preprocessing = fitted.preprocessing;
    trainCounts = fitted.counts;
  }
  const metadata: ArtifactMetadata = {
    version: 1,
    task: spec.task,
    preprocessing,
    input_schema: options.base ? options.base.input_schema : inputSchema(spec, preprocessing),
    labels,
  };
  const encode = (subset: Row[], rowNumber: (k: number) => number, counts?: SparseVector[]) =>
    encodeRows(metadata, subset, { labels: true, rowNumber, missing: 'impute', counts });
  return {
    train: encode(trainRows, rowNumbers(trainIdx), trainCounts),
    validation: valRows.length > 0 ? encode(valRows, rowNumbers(valIdx)) : null,
    metadata,
  };
}

export interface EncodeOptions {
  /** Read and encode the label column (evaluation, training). */
  labels: boolean;
  /** How a row is named in messages: training rows by 1-based number, prediction inputs by index. */
  rowNumber?: (k: number) => number;
  what?: 'row' | 'inputs';
  /** `impute`: a missing feature takes the training mean; `refuse`: a missing key is an error. */
  missing: 'impute' | 'refuse';
  keepTokens?: boolean;
  /** Cached `vocabularyIndex` of the preprocessing. */
  vocabulary?: Map<string, number>;
  /** Hashed n-grams: the cached IDF of the preprocessing, and counts already made for these rows. */
  idf?: Float32Array;
  counts?: SparseVector[];
  /** Images: check each image's header only (format, size, pixel limit), decoding nothing (the API's check). */
  headersOnly?: boolean;
}

/** Encodes rows with a model's preprocessing; every problem found is one MlError. */
export function encodeRows(metadata: ArtifactMetadata, rows: Row[], options: EncodeOptions): EncodedData {
  const code = options.what === 'inputs' ? 'invalid_input' : 'invalid_data';
  if (!Array.isArray(rows)) throw new MlError(code, `${options.what === 'inputs' ? 'inputs' : 'rows'} must be an array of objects`);
  const name = (k: number) => (options.what === 'inputs' ? `inputs[${k}]` : `row ${options.rowNumber ? options.rowNumber(k) : k + 1}`);
  const problems = new Problems();
  const pre = metadata.preprocessing;
  const n = rows.length;
  const y = options.labels ? new Float32Array(n) : null;
  let x: Float32Array | Int32Array | Uint8Array;
  let width: number;
  let tokens: string[][] | undefined;
  const labelIndex = metadata.labels ? new Map(metadata.labels.map((l, i) => [l, i])) : null;
  const target = pre.kind === 'tabular' || (pre.kind === 'foundation' && pre.input === 'text') ? pre.target : undefined;
  const label = metadata.input_schema.label;
  const texts: string[] | undefined = pre.kind === 'foundation' && pre.input === 'text' ? [] : undefined;
  const images: Uint8Array[] | undefined = pre.kind === 'foundation' && pre.input === 'image' ? [] : undefined;
  let scale: number | undefined;

  let sparse: SparseRowsBuilder | undefined;
  if (pre.kind === 'tabular') {
    width = pre.features.length;
    x = new Float32Array(n * width);
  } else if (pre.kind === 'image') {
    width = pre.width * pre.height * pre.channels;
    x = new Uint8Array(options.headersOnly ? 0 : n * width);
    scale = pre.scale;
  } else if (pre.kind === 'foundation') {
    width = 0;
    x = new Float32Array(0);
  } else if (pre.kind === 'hashed-ngrams') {
    width = pre.buckets;
    x = new Float32Array(0);
    sparse = new SparseRowsBuilder();
    if (options.keepTokens) tokens = [];
  } else {
    width = pre.sequence_length;
    x = new Int32Array(n * width);
    if (options.keepTokens) tokens = [];
  }
  const index = pre.kind === 'text' ? (options.vocabulary ?? vocabularyIndex(pre)) : null;
  const idf = pre.kind === 'hashed-ngrams' ? (options.idf ?? decodeIdf(pre)) : null;
  const hashing = pre.kind === 'hashed-ngrams' ? hashedOptions(pre) : null;

  for (let k = 0; k < n; k++) {
    const row = rows[k];
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      problems.add(`${name(k)} is not an object`);
      sparse?.push(EMPTY);
      continue;
    }
    if (pre.kind === 'tabular') {
      for (let j = 0; j < width; j++) {
        const feature = pre.features[j];
        const raw = row[feature];
        if (raw === undefined && options.missing === 'refuse') {
          problems.add(`${name(k)} is missing feature '${feature}'`);
          continue;
        }
        const v = numericValue(raw);
        if (v === undefined) problems.add(`${name(k)}: feature '${feature}' is not a number (${describeValue(raw)})`);
        else if (v !== null) x[k * width + j] = (v - pre.mean[j]) / pre.std[j];
      }
    } else if (pre.kind === 'image' || (pre.kind === 'foundation' && pre.input === 'image')) {
      try {
        const bytes = imageBytes(row[pre.image_field], pre.image_field);
        if (pre.kind === 'foundation' || options.headersOnly) checkImageBytes(bytes);
        else imagePixels(decodeRgb(bytes), pre, (x as Uint8Array).subarray(k * width, (k + 1) * width));
        images?.push(bytes);
      } catch (err) {
        if (!(err instanceof ImageProblem)) throw err;
        problems.add(`${name(k)} ${err.message}`);
        continue;
      }
    } else if (pre.kind === 'foundation') {
      // the encoder cannot read an empty text (and would silently drop its row): refuse it here, before any compute
      const raw = row[pre.text_field];
      if (typeof raw !== 'string' || raw.trim() === '') {
        problems.add(`${name(k)}: the text field '${pre.text_field}' is ${raw === undefined ? 'missing' : 'empty or not a string'}`);
        continue;
      }
      texts!.push(raw);
    } else if (pre.kind === 'hashed-ngrams') {
      const raw = row[pre.text_field];
      if (raw === undefined && options.missing === 'refuse') {
        problems.add(`${name(k)} is missing the text field '${pre.text_field}'`);
        sparse!.push(EMPTY);
        continue;
      }
      const counted = options.counts && !options.keepTokens ? { tokens: [], counts: options.counts[k] } : textCounts(raw, hashing!);
      sparse!.push(tfidf(counted.counts, idf));
      tokens?.push(counted.tokens.slice(0, pre.max_tokens));
    } else {
      const raw = row[pre.text_field];
      if (raw === undefined && options.missing === 'refuse') {
        problems.add(`${name(k)} is missing the text field '${pre.text_field}'`);
        continue;
      }
      const t = raw === undefined || raw === null ? [] : tokenize(String(raw));
      encodeTokens(t, index!, width, x as Int32Array, k * width);
      tokens?.push(t.slice(0, width));
    }
    if (y) {
      const rawLabel = row[label];
      if (labelIndex) {
        const l = labelValue(rawLabel);
        if (l === null) problems.add(`${name(k)} has no label '${label}'`);
        else if (!labelIndex.has(l))
          problems.add(`${name(k)}: label ${describeValue(l)} is not one of the model's labels (${metadata.labels!.join(', ')})`);
        else y[k] = labelIndex.get(l)!;
      } else {
        const v = numericValue(rawLabel);
        if (v === null) problems.add(`${name(k)} has no label '${label}'`);
        else if (v === undefined) problems.add(`${name(k)}: label '${label}' is not a number (${describeValue(rawLabel)})`);
        else y[k] = target ? (v - target.mean) / target.std : v;
      }
    }
  }
  if (problems.any) throw MlError.list(code, options.what === 'inputs' ? 'Invalid inputs' : 'Invalid dataset', problems.all);
  return { n, width, x, y, tokens, texts, images, scale, sparse: sparse?.build() };
}

const EMPTY: SparseVector = { indices: new Int32Array(0), weights: new Float32Array(0) };

/** Throws MlError `invalid_input` when prediction inputs do not fit a model's input schema (no TF.js: the API checks before queueing). */
export function checkInputs(metadata: ArtifactMetadata, inputs: Row[]): void {
  encodeRows(metadata, inputs, { labels: false, what: 'inputs', missing: 'refuse', headersOnly: true });
}

function checkSpec(spec: DatasetSpec, rows: Row[]): void {
  if (!Array.isArray(rows) || rows.length === 0) throw new MlError('invalid_data', 'The dataset has no rows');
  if (!spec || typeof spec.label !== 'string' || spec.label === '')
    throw new MlError('invalid_data', 'The dataset spec names no label column');
  if (spec.task === 'text-classification' && !spec.textField)
    throw new MlError('invalid_data', 'A text-classification dataset needs a text field');
  if (rows.length < 2) throw new MlError('invalid_data', 'The dataset needs at least 2 rows');
}

/** The image column of an image dataset: `spec.imageField`, by convention `image`. */
export function imageField(spec: DatasetSpec): string {
  return spec.imageField ?? 'image';
}

function fitLabels(spec: DatasetSpec, rows: Row[]): string[] {
  const seen = new Set<string>();
  const problems = new Problems();
  rows.forEach((row, k) => {
    const l = labelValue(row?.[spec.label]);
    if (l === null) problems.add(`row ${k + 1} has no label '${spec.label}'`);
    else seen.add(l);
  });
  if (problems.any) throw MlError.list('invalid_data', 'Invalid dataset', problems.all);
  if (seen.size < 2) throw new MlError('invalid_data', `Classification needs at least 2 classes; label '${spec.label}' has ${seen.size}`);
  return sortLabels(seen);
}

function checkBase(spec: DatasetSpec, base: ArtifactMetadata, rows: Row[]): void {
  if (base.task !== spec.task)
    throw new MlError('invalid_data', `The base version is a ${base.task} model; the dataset is for ${spec.task}`);
  const pre = base.preprocessing;
  const columns = new Set(Object.keys(rows[0] ?? {}));
  if (pre.kind === 'foundation')
    throw new MlError('invalid_data', 'A transfer-learned version is trained again with its base model, not fine-tuned as a base');
  const needed = pre.kind === 'tabular' ? pre.features : pre.kind === 'image' ? [pre.image_field] : [pre.text_field];
  const missing = needed.filter((c) => !columns.has(c));
  if (missing.length > 0) throw new MlError('invalid_data', `The dataset lacks the base version's input columns: ${missing.join(', ')}`);
}

/** The tabular feature columns: `spec.features`, or every column seen but the label. */
export function featureColumns(spec: DatasetSpec, rows: Row[]): string[] {
  if (spec.features) {
    if (!Array.isArray(spec.features) || spec.features.length === 0)
      throw new MlError('invalid_data', 'features must name at least one column');
    if (spec.features.includes(spec.label)) throw new MlError('invalid_data', `The label '${spec.label}' cannot also be a feature`);
    const absent = spec.features.filter((f) => !rows.some((row) => row && typeof row === 'object' && f in row));
    if (absent.length > 0)
      throw new MlError(
        'invalid_data',
        `No row has the feature column${absent.length > 1 ? 's' : ''} ${absent.map((f) => `'${f}'`).join(', ')}`,
      );
    return spec.features;
  }
  const seen = new Set<string>();
  for (const row of rows) {
    if (row && typeof row === 'object') for (const key of Object.keys(row)) if (key !== spec.label) seen.add(key);
  }
  if (seen.size === 0) throw new MlError('invalid_data', 'The dataset has no feature columns besides the label');
  return [...seen];
}

function fitTabular(spec: DatasetSpec, rows: Row[], trainRows: Row[]): TabularPreprocessing {
  const features = featureColumns(spec, rows);
  const d = features.length;
  const sum = new Float64Array(d);
  const sumSq = new Float64Array(d);
  const count = new Float64Array(d);
  const problems = new Problems();
  rows.forEach((row, k) => {
    if (!row || typeof row !== 'object') {
      problems.add(`row ${k + 1} is not an object`);
      return;
    }
    for (const f of features) {
      if (numericValue(row[f]) === undefined) problems.add(`row ${k + 1}: feature '${f}' is not a number (${describeValue(row[f])})`);
    }
  });
  if (problems.any) throw MlError.list('invalid_data', 'Invalid dataset', problems.all);
  let tSum = 0;
  let tSumSq = 0;
  let tCount = 0;
  for (const row of trainRows) {
    for (let j = 0; j < d; j++) {
      const v = numericValue(row[features[j]]);
      if (typeof v === 'number') {
        sum[j] += v;
        sumSq[j] += v * v;
        count[j]++;
      }
    }
    if (spec.task === 'regression') {
      const v = numericValue(row[spec.label]);
      if (typeof v === 'number') {
        tSum += v;
        tSumSq += v * v;
        tCount++;
      }
    }
  }
  const stat = (s: number, sq: number, c: number) => {
    const mean = c > 0 ? s / c : 0;
    const variance = c > 0 ? Math.max(0, sq / c - mean * mean) : 0;
    const std = Math.sqrt(variance);
    // A constant column carries no signal: dividing by 1 keeps it at zero instead of dividing by zero.
    return { mean, std: std > 1e-12 * Math.max(1, Math.abs(mean)) ? std : 1 };
  };
  const stats = features.map((_, j) => stat(sum[j], sumSq[j], count[j]));
  const pre: TabularPreprocessing = { kind: 'tabular', features, mean: stats.map((s) => s.mean), std: stats.map((s) => s.std) };
  if (spec.task === 'regression') pre.target = stat(tSum, tSumSq, tCount);
  return pre;
}

function checkTextField(field: string, trainRows: Row[]): void {
  if (!trainRows.some((row) => row && typeof row === 'object' && row[field] !== undefined && row[field] !== null)) {
    throw new MlError('invalid_data', `No row has the text field '${field}'`);
  }
}

function fitHashed(
  spec: DatasetSpec,
  trainRows: Row[],
  options: PrepareOptions,
): { preprocessing: HashedNgramPreprocessing; counts: SparseVector[] } {
  const field = spec.textField!;
  checkTextField(field, trainRows);
  const hashing = {
    buckets: options.buckets ?? HASHED_DEFAULTS.buckets,
    ngrams: options.ngrams ?? HASHED_DEFAULTS.ngrams,
    maxTokens: options.sequenceLength ?? HASHED_DEFAULTS.maxTokens,
  };
  const counts = trainRows.map((row) => textCounts(row && typeof row === 'object' ? row[field] : undefined, hashing).counts);
  return { preprocessing: fitHashedText(field, counts, hashing), counts };
}

function fitText(spec: DatasetSpec, trainRows: Row[], options: PrepareOptions): TextPreprocessing {
  const field = spec.textField!;
  checkTextField(field, trainRows);
  const lists = trainRows.map((row) => {
    const raw = row?.[field];
    return raw === undefined || raw === null ? [] : tokenize(String(raw));
  });
  return {
    kind: 'text',
    text_field: field,
    tokenizer: 'lowercase-words-punctuation',
    vocabulary: buildVocabulary(lists, options.maxVocabulary ?? 20_000),
    sequence_length: options.sequenceLength ?? chooseSequenceLength(lists.map((l) => l.length)),
    pad_id: 0,
    oov_id: 1,
  };
}

export function inputSchema(spec: Pick<DatasetSpec, 'task' | 'label'>, pre: Preprocessing): InputSchema {
  if (pre.kind === 'tabular') {
    return { task: spec.task, label: spec.label, features: pre.features.map((name) => ({ name, type: 'number' as const })) };
  }
  if (pre.kind === 'foundation' && pre.input === 'image')
    return { task: spec.task, label: spec.label, image_field: pre.image_field, base_model: pre.base };
  if (pre.kind === 'foundation') return { task: spec.task, label: spec.label, text_field: pre.text_field, base_model: pre.base };
  if (pre.kind === 'image')
    return {
      task: spec.task,
      label: spec.label,
      image_field: pre.image_field,
      image: { width: pre.width, height: pre.height, channels: pre.channels },
    };
  if (pre.kind === 'hashed-ngrams')
    return { task: spec.task, label: spec.label, text_field: pre.text_field, buckets: pre.buckets, ngrams: pre.ngrams };
  return {
    task: spec.task,
    label: spec.label,
    text_field: pre.text_field,
    sequence_length: pre.sequence_length,
    vocabulary_size: pre.vocabulary.length,
  };
}
