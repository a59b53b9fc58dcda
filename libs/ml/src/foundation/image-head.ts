import * as tf from '@tensorflow/tfjs';
import { fitAndPackage } from '../fit.js';
import { ImageProblem, checkImageBytes, imageBytes } from '../data/image.js';
import { imageField, type EncodedData } from '../data/prepare.js';
import { labelValue, Problems, sortLabels } from '../data/values.js';
import { MlError } from '../errors.js';
import { resolveHyperparameters } from '../hyperparameters.js';
import { seededRandom, shuffleInPlace, withSeededMathRandom } from '../random.js';
import { throwIfAborted } from '../training-loop.js';
import type { ArtifactMetadata, BackendName, FoundationImagePreprocessing, Hyperparameters, TrainOptions, TrainResult } from '../types.js';
import { buildTopAndHead, cutActivations, planCut } from './backbone-cut.js';
import { foundationModel } from './catalog.js';
import { isInputError } from './errors.js';
import { foundationInternals, loadFoundation } from './runtime.js';
import { buildHead } from './train-head.js';
import { fitImageHeadPreprocessing, imageHeadInputs } from './transfer.js';

/** A frozen base: a linear softmax on the standardized features. Fine-tuning: a smaller step (the top is pretrained). */
export const IMAGE_HEAD_DEFAULTS: Hyperparameters = {
  epochs: 20,
  learning_rate: 0.01,
  batch_size: 32,
  hidden_units: [],
  validation_split: 0.1,
};
export const FINE_TUNE_LEARNING_RATE = 0.001;

/**
 * Transfer learning on images. Frozen (default): a dense head on the base's 1280-d features of each row, given by the
 * caller (`baseModel.features`, a cache). `trainable_base_layers` N ≥ 1: the backbone's layers above a cut under its
 * top N layers with weights train with the head; the frozen bottom runs here once per image (its activations at the
 * cut are held for the epochs, so no feature cache helps), and the artifact holds only the top and the head.
 */
export async function trainImageHead(opts: TrainOptions, backend: BackendName, started: number): Promise<TrainResult> {
  const { spec, rows } = opts;
  const base = opts.baseModel!;
  const card = foundationModel(base.id);
  if (card?.input.type !== 'image') throw new MlError('invalid_data', `'${base.id}' is not an image foundation model`);
  if (!Array.isArray(rows) || rows.length < 2) throw new MlError('invalid_data', 'The dataset needs at least 2 rows');
  const hp = resolveHyperparameters(
    spec.task,
    { ...IMAGE_HEAD_DEFAULTS, ...(opts.hyperparameters ?? {}) },
    { preset: true, textData: false, baseModel: true },
  );
  const layers = hp.trainable_base_layers ?? 0;
  if (layers > 0 && opts.hyperparameters?.learning_rate === undefined) hp.learning_rate = FINE_TUNE_LEARNING_RATE;
  if (hp.augmentation)
    throw new MlError(
      'invalid_hyperparameters',
      'augmentation applies to models trained from scratch; a head on a base model reads each image once',
    );
  const field = imageField(spec);
  const { images, labels, y } = readImageRows(opts, field, layers === 0);
  throwIfAborted(opts.signal);

  const random = seededRandom(hp.seed);
  const order = Int32Array.from({ length: rows.length }, (_, i) => i);
  shuffleInPlace(order, random);
  const nVal = Math.min(rows.length - 1, Math.round(rows.length * hp.validation_split));
  const trainIdx = Array.from(order.subarray(nVal)).sort((a, b) => a - b);
  const valIdx = Array.from(order.subarray(0, nVal)).sort((a, b) => a - b);
  const features = base.features ?? [];
  let pre: FoundationImagePreprocessing;
  let x: Float32Array;
  let width: number;
  let model: tf.LayersModel;
  const init = seededRandom((hp.seed ^ 0x5bd1e995) >>> 0);
  if (layers === 0) {
    pre = fitImageHeadPreprocessing(
      { id: base.id, sha256: base.sha256 },
      field,
      trainIdx.map((i) => features[i]),
    );
    x = imageHeadInputs(pre, features);
    width = pre.base_width;
    model = withSeededMathRandom(init, () => buildHead(width, labels.length, hp));
  } else {
    const handle = await loadFoundation(base.id);
    if (handle.sha256 !== base.sha256)
      throw new MlError(
        'invalid_data',
        `The base '${base.id}' of this process has weights ${handle.sha256.slice(0, 12)}…, not ${base.sha256.slice(0, 12)}…`,
      );
    const encoder = foundationInternals(handle).image!;
    const plan = planCut(encoder.backboneLayers(), layers, base.id);
    try {
      ({ x, width } = await cutActivations(encoder, plan.cut, images, opts.signal));
    } catch (err) {
      if (isInputError(err))
        throw new MlError('invalid_data', `Invalid dataset: row ${err.index + 1} ${err.message.replace(/^input\[\d+\] /, '')}`);
      throw err;
    }
    // no standardization: the trained top computes the features itself
    pre = {
      kind: 'foundation',
      base: { id: base.id, sha256: base.sha256 },
      input: 'image',
      image_field: field,
      base_width: card.dimensions ?? 0,
      base_mean: '',
      base_std: '',
      base_weight: 1,
      ngrams: null,
      fine_tuned: { trainable_base_layers: plan.trainable, cut: plan.cut, cut_shape: plan.cutShape },
    };
    model = withSeededMathRandom(init, () => buildTopAndHead(plan, labels.length, hp.hidden_units ?? []));
  }
  const subset = (idx: number[]): EncodedData => {
    const out = new Float32Array(idx.length * width);
    idx.forEach((i, k) => {
      out.set(x.subarray(i * width, (i + 1) * width), k * width);
    });
    return { n: idx.length, width, x: out, y: Float32Array.from(idx, (i) => y[i]) };
  };
  const train = subset(trainIdx);
  const validation = valIdx.length > 0 ? subset(valIdx) : null;
  x = new Float32Array(0);
  const metadata: ArtifactMetadata = {
    version: 1,
    task: spec.task,
    preprocessing: pre,
    input_schema: { task: spec.task, label: spec.label, image_field: field, base_model: pre.base },
    labels,
    base: pre.base,
  };

  // fine-tuning keeps batch normalization on the base's statistics (a few images would overwrite them)
  return fitAndPackage(model, {
    what: 'head',
    train,
    validation,
    metadata,
    hp,
    opts,
    backend,
    started,
    makeOptimizer: () => tf.train.adam(hp.learning_rate),
    loop: { inferenceMode: layers > 0 },
  });
}

/** Each row's image bytes (header checked) and label, and its base features when the base is frozen; every problem in one MlError. */
function readImageRows(opts: TrainOptions, field: string, frozen: boolean): { images: Uint8Array[]; labels: string[]; y: Float32Array } {
  const { spec, rows } = opts;
  const features = opts.baseModel!.features;
  if (frozen && (!Array.isArray(features) || features.length !== rows.length)) {
    throw new MlError(
      'invalid_data',
      `${Array.isArray(features) ? features.length : 0} base feature rows for ${rows.length} rows (a frozen base reads the caller's features)`,
    );
  }
  const problems = new Problems();
  const images: Uint8Array[] = [];
  const values: string[] = [];
  rows.forEach((row, k) => {
    try {
      const bytes = imageBytes(row?.[field], field);
      checkImageBytes(bytes);
      images.push(bytes);
    } catch (err) {
      if (!(err instanceof ImageProblem)) throw err;
      problems.add(`row ${k + 1} ${err.message}`);
      images.push(new Uint8Array(0));
    }
    const f = features?.[k];
    if (frozen && (!(f instanceof Float32Array) || !f.every(Number.isFinite)))
      problems.add(`row ${k + 1}: its base features are not finite numbers`);
    const l = labelValue(row?.[spec.label]);
    if (l === null) problems.add(`row ${k + 1} has no label '${spec.label}'`);
    values.push(l ?? '');
  });
  if (problems.any) throw MlError.list('invalid_data', 'Invalid dataset', problems.all);
  const labels = sortLabels(new Set(values));
  if (labels.length < 2)
    throw new MlError('invalid_data', `Classification needs at least 2 classes; label '${spec.label}' has ${labels.length}`);
  const index = new Map(labels.map((l, i) => [l, i]));
  return { images, labels, y: Float32Array.from(values, (l) => index.get(l)!) };
}
