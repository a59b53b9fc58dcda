import * as tf from '@tensorflow/tfjs';
import { fitAndPackage } from '../fit.js';
import type { EncodedData } from '../data/prepare.js';
import { labelValue, numericValue, Problems, sortLabels } from '../data/values.js';
import { MlError } from '../errors.js';
import { resolveHyperparameters } from '../hyperparameters.js';
import { seededRandom, shuffleInPlace, withSeededMathRandom } from '../random.js';
import { scaleToData } from '../steps.js';
import { throwIfAborted } from '../training-loop.js';
import type {
  ArtifactMetadata,
  BackendName,
  FoundationPreprocessing,
  Hyperparameters,
  ResolvedHyperparameters,
  TrainOptions,
  TrainResult,
} from '../types.js';
import { foundationModel } from './catalog.js';
import { fitHeadPreprocessing, HEAD_FEATURES, headInputs, headWidth, REGRESSION_BASE_WEIGHT } from './transfer.js';

/** Defaults of a head where the caller sets none: a linear head (softmax or linear), as the default text model trains. */
export const HEAD_DEFAULTS: Hyperparameters = { epochs: 20, learning_rate: 0.01, batch_size: 32, hidden_units: [], validation_split: 0.1 };

/**
 * Transfer learning: a small dense head on the frozen base's features of each row (given, computed once by the
 * caller) and the hashed n-grams of its raw text. The artifact holds the head and the base's id and sha256.
 */
export async function trainHead(opts: TrainOptions, backend: BackendName, started: number): Promise<TrainResult> {
  const { spec, rows } = opts;
  const base = opts.baseModel!;
  if (opts.base || opts.architecture !== undefined)
    throw new MlError('architecture_not_allowed', 'A head on a base model takes neither a base version nor an architecture');
  if (spec.task === 'image-classification') return (await import('./image-head.js')).trainImageHead(opts, backend, started);
  if (spec.task !== 'text-classification' && spec.task !== 'regression')
    throw new MlError('invalid_data', `A base model serves text-classification, regression and image-classification, not ${spec.task}`);
  const model = foundationModel(base.id);
  if (model?.input.type !== 'text') throw new MlError('invalid_data', `'${base.id}' is not a text foundation model`);
  if (!spec.textField) throw new MlError('invalid_data', 'A head on a text base needs a text field');
  if (!Array.isArray(rows) || rows.length < 2) throw new MlError('invalid_data', 'The dataset needs at least 2 rows');
  const features = base.features ?? [];
  if (!Array.isArray(features) || features.length !== rows.length) {
    throw new MlError('invalid_data', `${features.length ?? 0} base feature rows for ${rows.length} rows`);
  }
  const hp: ResolvedHyperparameters = resolveHyperparameters(
    spec.task,
    { ...HEAD_DEFAULTS, ...(opts.hyperparameters ?? {}) },
    { preset: true, textData: false },
  );
  const { texts, labels, y, target } = readRows(opts);
  throwIfAborted(opts.signal);

  const random = seededRandom(hp.seed);
  const order = Int32Array.from({ length: rows.length }, (_, i) => i);
  shuffleInPlace(order, random);
  const nVal = Math.min(rows.length - 1, Math.round(rows.length * hp.validation_split));
  const trainIdx = Array.from(order.subarray(nVal)).sort((a, b) => a - b);
  const valIdx = Array.from(order.subarray(0, nVal)).sort((a, b) => a - b);
  const pre: FoundationPreprocessing = {
    ...fitHeadPreprocessing(
      { id: base.id, sha256: base.sha256 },
      spec.textField,
      trainIdx.map((i) => features[i]),
      trainIdx.map((i) => texts[i]),
      spec.task === 'regression' ? { ...HEAD_FEATURES, baseWeight: REGRESSION_BASE_WEIGHT } : HEAD_FEATURES,
    ),
    ...(target ? { target } : {}),
  };
  const width = headWidth(pre);
  const encode = (idx: number[]): EncodedData => ({
    n: idx.length,
    width,
    x: headInputs(
      pre,
      idx.map((i) => features[i]),
      idx.map((i) => texts[i]),
    ),
    y: Float32Array.from(idx, (i) => y[i]),
  });
  const train = encode(trainIdx);
  // The head is a linear model over the same kind of sparse features: the same number of steps.
  scaleToData(opts, hp, train.n);
  const validation = valIdx.length > 0 ? encode(valIdx) : null;
  const metadata: ArtifactMetadata = {
    version: 1,
    task: spec.task,
    preprocessing: pre,
    input_schema: { task: spec.task, label: spec.label, text_field: spec.textField, base_model: pre.base },
    labels,
    base: pre.base,
  };

  const head = withSeededMathRandom(seededRandom((hp.seed ^ 0x5bd1e995) >>> 0), () => buildHead(width, labels ? labels.length : 1, hp));
  return fitAndPackage(head, {
    what: 'head',
    train,
    validation,
    metadata,
    hp,
    opts,
    backend,
    started,
    makeOptimizer: () => tf.train.adam(hp.learning_rate),
    lossScale: target ? target.std ** 2 : 1,
  });
}

/** Dense ReLU layers of `hidden_units`, then softmax (classes) or linear (one output): a head on a base's features. */
export function buildHead(inputWidth: number, outputs: number, hp: Pick<ResolvedHyperparameters, 'hidden_units'>): tf.LayersModel {
  const head = tf.sequential({ name: 'head' });
  (hp.hidden_units ?? []).forEach((units, i) => {
    head.add(
      tf.layers.dense({
        name: `hidden_${i + 1}`,
        units,
        activation: 'relu',
        kernelInitializer: 'heNormal',
        ...(i === 0 ? { batchInputShape: [null, inputWidth] } : {}),
      }),
    );
  });
  head.add(
    tf.layers.dense({
      name: 'output',
      units: outputs,
      activation: outputs > 1 ? 'softmax' : 'linear',
      kernelRegularizer: HEAD_FEATURES.l2 > 0 ? tf.regularizers.l2({ l2: HEAD_FEATURES.l2 }) : undefined,
      ...(head.layers.length === 0 ? { batchInputShape: [null, inputWidth] } : {}),
    }),
  );
  return head;
}

/** Texts, labels (classification) or standardized targets (regression) of every row; every problem is one MlError. */
function readRows(opts: TrainOptions): {
  texts: string[];
  labels: string[] | null;
  y: Float32Array;
  target?: { mean: number; std: number };
} {
  const { spec, rows } = opts;
  const problems = new Problems();
  const texts: string[] = [];
  const values: Array<string | number | null> = [];
  rows.forEach((row, k) => {
    const text = row?.[spec.textField!];
    if (typeof text !== 'string' || text.trim() === '')
      problems.add(`row ${k + 1}: the text field '${spec.textField}' is empty or missing`);
    texts.push(typeof text === 'string' ? text : '');
    const f = opts.baseModel!.features?.[k];
    if (!(f instanceof Float32Array) || !f.every(Number.isFinite)) problems.add(`row ${k + 1}: its base features are not finite numbers`);
    if (spec.task === 'regression') {
      const v = numericValue(row?.[spec.label]);
      if (v === null || v === undefined) problems.add(`row ${k + 1} has no numeric label '${spec.label}'`);
      values.push(v ?? null);
    } else {
      const l = labelValue(row?.[spec.label]);
      if (l === null) problems.add(`row ${k + 1} has no label '${spec.label}'`);
      values.push(l);
    }
  });
  if (problems.any) throw MlError.list('invalid_data', 'Invalid dataset', problems.all);
  if (spec.task === 'regression') {
    const nums = values as number[];
    const mean = nums.reduce((a, b) => a + b, 0) / nums.length;
    const std = Math.sqrt(nums.reduce((a, b) => a + (b - mean) ** 2, 0) / nums.length) || 1;
    return { texts, labels: null, y: Float32Array.from(nums, (v) => (v - mean) / std), target: { mean, std } };
  }
  const labels = sortLabels(new Set(values as string[]));
  if (labels.length < 2)
    throw new MlError('invalid_data', `Classification needs at least 2 classes; label '${spec.label}' has ${labels.length}`);
  const index = new Map(labels.map((l, i) => [l, i]));
  return { texts, labels, y: Float32Array.from(values as string[], (l) => index.get(l)!), target: undefined };
}
