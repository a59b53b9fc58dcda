import * as tf from '@tensorflow/tfjs';
import { fitAndPackage } from './fit.js';
import { decodeArtifact, type DecodedArtifact } from './artifact/format.js';
import { loadLayersModel } from './artifact/model-io.js';
import { checkTopology, type TopologyReport } from './artifact/topology.js';
import { ensureBackend } from './backend.js';
import { HASHED_DEFAULTS } from './data/hashed-text.js';
import { scaleToData } from './steps.js';
import { featureColumns, prepareTraining } from './data/prepare.js';
import { MlError } from './errors.js';
import { resolveHyperparameters } from './hyperparameters.js';
import { buildImagePreset, imageAugmenter, imageLearningRateFactor } from './image-model.js';
import { buildPreset } from './presets.js';
import { presetParameters, type PresetShape } from './sizing.js';
import { seededRandom, withSeededMathRandom } from './random.js';
import { throwIfAborted } from './training-loop.js';
import { TASKS, type ResolvedHyperparameters, type TrainOptions, type TrainResult } from './types.js';

/**
 * Trains a model on rows and returns it as an artifact. A custom loop rather than `model.fit`:
 * seeded batch order, the AbortSignal checked before every batch, a yield to the event loop
 * after each, and no per-batch tensors left behind.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const backend = await ensureBackend();
  throwIfAborted(opts.signal);
  const { spec } = opts;
  if (!spec || !TASKS.includes(spec.task)) throw new MlError('invalid_data', `task must be one of ${TASKS.join(', ')}`);
  if (opts.baseModel) return (await import('./foundation/train-head.js')).trainHead(opts, backend.name, started);
  if (spec.task === 'image-classification' && opts.architecture !== undefined) {
    throw new MlError(
      'architecture_not_allowed',
      'Image models train the convolutional preset or a head on a base model (base_model); custom architectures are for tabular and text tasks',
    );
  }
  if (opts.base && opts.architecture !== undefined)
    throw new MlError('architecture_not_allowed', 'A fine-tuned model keeps its base architecture: give base or architecture, not both');
  const text = spec.task === 'text-classification';
  const base = opts.base ? decodeArtifact(opts.base) : null;
  const hp = resolveHyperparameters(spec.task, opts.hyperparameters, { preset: !base && opts.architecture === undefined, textData: !base });

  // A custom topology is checked before the data is touched, then again with the data's widths.
  let maxVocabulary = hp.max_vocabulary;
  let sequenceLength = hp.sequence_length;
  if (opts.architecture !== undefined) {
    const early = checkTopology(opts.architecture, {
      task: spec.task,
      inputWidth: text || !Array.isArray(opts.rows) ? undefined : featureColumns(spec, opts.rows).length,
      maxParameters: opts.maxParameters,
      fillInputShape: true,
    });
    if (text && early.embedding) {
      maxVocabulary = Math.min(maxVocabulary ?? early.embedding.input_dim, early.embedding.input_dim);
      const length = early.input_shape[1];
      if (typeof length === 'number') sequenceLength = length;
    }
  }

  // The preset reads hashed n-grams; a custom architecture reads token ids through its Embedding.
  const textModel = opts.architecture === undefined ? 'hashed-ngrams' : 'sequence';
  const buckets = textModel === 'hashed-ngrams' && text && !base ? fittingBuckets(opts, spec, hp) : undefined;
  const random = seededRandom(hp.seed);
  const prepared = prepareTraining(spec, opts.rows, {
    validationSplit: hp.validation_split,
    random,
    maxVocabulary,
    sequenceLength,
    textModel,
    buckets,
    ngrams: hp.ngrams,
    base: base?.metadata,
  });
  const { metadata } = prepared;
  const pre0 = metadata.preprocessing;
  if (text && pre0.kind === 'text') hp.sequence_length = pre0.sequence_length;
  if (text && pre0.kind === 'hashed-ngrams' && !base) hp.max_vocabulary = pre0.buckets;
  const shape: PresetShape = {
    task: spec.task,
    inputWidth: prepared.train.width,
    outputWidth: metadata.labels ? metadata.labels.length : 1,
    vocabularySize: pre0.kind === 'text' ? pre0.vocabulary.length : pre0.kind === 'hashed-ngrams' ? pre0.buckets : undefined,
    textModel: pre0.kind === 'hashed-ngrams' ? 'hashed-ngrams' : 'sequence',
    image: pre0.kind === 'image' ? { width: pre0.width, height: pre0.height, channels: pre0.channels } : undefined,
  };
  if (pre0.kind === 'hashed-ngrams' && !base) scaleToData(opts, hp, prepared.train.n);
  throwIfAborted(opts.signal);

  const model = await buildModel(opts, shape, hp, base);
  const pre = metadata.preprocessing;
  const augment = shape.image && hp.augmentation ? imageAugmenter(shape.image, hp.augmentation) : undefined;
  const learningRateFactor = shape.image ? imageLearningRateFactor : undefined;
  return fitAndPackage(model, {
    what: 'model',
    train: prepared.train,
    validation: prepared.validation,
    metadata,
    hp,
    opts,
    backend: backend.name,
    started,
    makeOptimizer: () => makeOptimizer(hp),
    lossScale: pre.kind === 'tabular' && pre.target ? pre.target.std ** 2 : 1,
    loop: { augment, learningRateFactor },
  });
}

async function buildModel(
  opts: TrainOptions,
  shape: PresetShape,
  hp: ResolvedHyperparameters,
  base: DecodedArtifact | null,
): Promise<tf.LayersModel> {
  if (base) return loadLayersModel(base);
  const init = seededRandom((hp.seed ^ 0x5bd1e995) >>> 0);
  if (opts.architecture !== undefined) {
    const report: TopologyReport = checkTopology(opts.architecture, {
      task: shape.task,
      inputWidth: shape.inputWidth,
      outputWidth: shape.outputWidth,
      vocabularySize: shape.vocabularySize,
      maxParameters: opts.maxParameters,
      fillInputShape: true,
    });
    // modelFromJSON builds (and initializes) every layer before its first await: seeded.
    const pending = withSeededMathRandom(init, () =>
      tf.models.modelFromJSON({ modelTopology: report.topology } as Parameters<typeof tf.models.modelFromJSON>[0]),
    );
    try {
      return await pending;
    } catch (err) {
      throw new MlError(
        'architecture_not_allowed',
        `TF.js cannot build the architecture: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  const planned = presetParameters(shape, hp);
  if (opts.maxParameters !== undefined && planned > opts.maxParameters) {
    throw new MlError('too_many_parameters', `The model would have ${planned} parameters; the limit is ${opts.maxParameters}`);
  }
  return withSeededMathRandom(init, () => (shape.image ? buildImagePreset(shape.image, shape.outputWidth, hp) : buildPreset(shape, hp)));
}

/**
 * The preset's hash buckets: max_vocabulary when given, else the default halved until the model
 * fits max_model_parameters (many classes), down to HASHED_DEFAULTS.minBuckets.
 */
function fittingBuckets(opts: TrainOptions, spec: TrainOptions['spec'], hp: ResolvedHyperparameters): number {
  const given = opts.hyperparameters?.max_vocabulary;
  if (typeof given === 'number') return given;
  let buckets: number = HASHED_DEFAULTS.buckets;
  if (opts.maxParameters === undefined || !Array.isArray(opts.rows)) return buckets;
  const classes = new Set(opts.rows.map((r) => (r && typeof r === 'object' ? String(r[spec.label]) : ''))).size;
  const size = (b: number) =>
    presetParameters(
      { task: spec.task, inputWidth: b, outputWidth: Math.max(2, classes), vocabularySize: b, textModel: 'hashed-ngrams' },
      hp,
    );
  while (buckets > HASHED_DEFAULTS.minBuckets && size(buckets) > opts.maxParameters) buckets >>= 1;
  return buckets;
}

function makeOptimizer(hp: ResolvedHyperparameters): tf.Optimizer {
  switch (hp.optimizer) {
    case 'sgd':
      return tf.train.sgd(hp.learning_rate);
    case 'rmsprop':
      return tf.train.rmsprop(hp.learning_rate);
    case 'adagrad':
      return tf.train.adagrad(hp.learning_rate);
    default:
      return tf.train.adam(hp.learning_rate);
  }
}
