import { MlError } from './errors.js';
import { randomSeed } from './random.js';
import { OPTIMIZERS, type Hyperparameters, type OptimizerName, type ResolvedHyperparameters, type Task } from './types.js';

/** Defaults by task. `seed` has none: an unseeded job gets a random seed, recorded in the version. */
export const HYPERPARAMETER_DEFAULTS = {
  tabular: {
    epochs: 20,
    batch_size: 32,
    learning_rate: 0.001,
    optimizer: 'adam' as OptimizerName,
    validation_split: 0.2,
    early_stopping: null,
    hidden_units: [128, 128],
  },
  text: {
    epochs: 10,
    batch_size: 32,
    learning_rate: 0.01,
    optimizer: 'adam' as OptimizerName,
    validation_split: 0.2,
    early_stopping: null,
    hidden_units: [] as number[],
    /** The sequence model's embedding width; the hashed-n-gram preset has no projection unless asked. */
    embedding_dim: 64,
    /** The sequence model's vocabulary cap (custom Embedding architectures). */
    max_vocabulary: 20_000,
    /** The preset's hash buckets (max_vocabulary reinterpreted) and longest n-gram. */
    buckets: 32_768,
    ngrams: 1,
  },
  /** The convolutional network from scratch (image-model.ts); epochs measured on MNIST digits (docs/ml.md). */
  image: {
    epochs: 8,
    batch_size: 32,
    learning_rate: 0.001,
    optimizer: 'adam' as OptimizerName,
    validation_split: 0.1,
    early_stopping: null,
    hidden_units: [128],
  },
  early_stopping: { min_delta: 0, restore_best_weights: true },
} as const;

/** Bounds of each hyperparameter, enforced by `resolveHyperparameters`. */
export const HYPERPARAMETER_LIMITS = {
  epochs: [1, 1000],
  batch_size: [1, 8192],
  learning_rate: [1e-7, 10],
  validation_split: [0, 0.9],
  patience: [1, 1000],
  min_delta: [0, 1e9],
  hidden_units: [1, 4096],
  hidden_layers: [0, 16],
  embedding_dim: [1, 1024],
  max_vocabulary: [3, 200_000],
  sequence_length: [1, 2048],
  ngrams: [1, 3],
  shift: [0, 0.25],
  trainable_base_layers: [0, 1000],
} as const;

const COMMON_KEYS = ['epochs', 'batch_size', 'learning_rate', 'optimizer', 'validation_split', 'early_stopping', 'seed'];
const TABULAR_PRESET_KEYS = ['hidden_units'];
const TEXT_PRESET_KEYS = ['hidden_units', 'embedding_dim', 'ngrams'];
const TEXT_DATA_KEYS = ['max_vocabulary', 'sequence_length'];
const IMAGE_KEYS = ['augmentation'];

export interface ResolveOptions {
  /** False when the model is a custom architecture or a fine-tuned base: preset keys then do not apply. */
  preset?: boolean;
  /** False when fine-tuning: the vocabulary and sequence length come from the base. */
  textData?: boolean;
  /** A head on a foundation model: images may then unfreeze the backbone's top (`trainable_base_layers`). */
  baseModel?: boolean;
}

/**
 * Checks hyperparameters and fills in the defaults. Unknown keys, wrong types and values out
 * of range are one MlError `invalid_hyperparameters` listing every problem.
 */
export function resolveHyperparameters(
  task: Task,
  input: Hyperparameters | undefined | null,
  options: ResolveOptions = {},
): ResolvedHyperparameters {
  const preset = options.preset ?? true;
  const textData = options.textData ?? true;
  const text = task === 'text-classification';
  const image = task === 'image-classification';
  const hp = (input ?? {}) as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof hp !== 'object' || Array.isArray(hp)) {
    throw new MlError('invalid_hyperparameters', 'hyperparameters must be an object');
  }
  const allowed = new Set([
    ...COMMON_KEYS,
    ...(text ? [...TEXT_PRESET_KEYS, ...TEXT_DATA_KEYS] : TABULAR_PRESET_KEYS),
    ...(image ? IMAGE_KEYS : []),
    ...(image && options.baseModel ? ['trainable_base_layers'] : []),
  ]);
  for (const key of Object.keys(hp)) {
    if (key === 'trainable_base_layers' && image && allowed.has(key) === false)
      problems.push('trainable_base_layers applies to a head on a base model (base_model); a model from scratch trains every layer');
    else if (!allowed.has(key)) problems.push(`unknown hyperparameter '${key}' for task ${task}`);
  }
  const defaults = text ? HYPERPARAMETER_DEFAULTS.text : image ? HYPERPARAMETER_DEFAULTS.image : HYPERPARAMETER_DEFAULTS.tabular;
  const L = HYPERPARAMETER_LIMITS;
  const int = (key: string, [min, max]: readonly [number, number], fallback: number): number => {
    const v = hp[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`${key} must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return v;
  };
  const num = (key: string, [min, max]: readonly [number, number], fallback: number, where = hp, name = key): number => {
    const v = where[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      problems.push(`${name} must be a number from ${min} to ${max}`);
      return fallback;
    }
    return v;
  };

  const optimizer = hp.optimizer ?? defaults.optimizer;
  if (!OPTIMIZERS.includes(optimizer as OptimizerName)) problems.push(`optimizer must be one of ${OPTIMIZERS.join(', ')}`);
  const validationSplit = num('validation_split', L.validation_split, defaults.validation_split);
  let seed = hp.seed as number | undefined;
  if (seed === undefined || seed === null) seed = randomSeed();
  else if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    problems.push('seed must be an integer from 0 to 4294967295');
  }

  let earlyStopping: ResolvedHyperparameters['early_stopping'] = null;
  const es = hp.early_stopping;
  if (es !== undefined && es !== null) {
    if (typeof es !== 'object' || Array.isArray(es))
      problems.push('early_stopping must be an object {patience, min_delta?, restore_best_weights?}');
    else {
      const e = es as Record<string, unknown>;
      for (const key of Object.keys(e)) {
        if (!['patience', 'min_delta', 'restore_best_weights'].includes(key)) problems.push(`unknown early_stopping field '${key}'`);
      }
      const patience = e.patience;
      if (typeof patience !== 'number' || !Number.isInteger(patience) || patience < L.patience[0] || patience > L.patience[1]) {
        problems.push(`early_stopping.patience must be an integer from ${L.patience[0]} to ${L.patience[1]}`);
      }
      const restore = e.restore_best_weights ?? HYPERPARAMETER_DEFAULTS.early_stopping.restore_best_weights;
      if (typeof restore !== 'boolean') problems.push('early_stopping.restore_best_weights must be a boolean');
      earlyStopping = {
        patience: patience as number,
        min_delta: num('min_delta', L.min_delta, HYPERPARAMETER_DEFAULTS.early_stopping.min_delta, e, 'early_stopping.min_delta'),
        restore_best_weights: restore as boolean,
      };
    }
  }

  const resolved: ResolvedHyperparameters = {
    epochs: int('epochs', L.epochs, defaults.epochs),
    batch_size: int('batch_size', L.batch_size, defaults.batch_size),
    learning_rate: num('learning_rate', L.learning_rate, defaults.learning_rate),
    optimizer: optimizer as OptimizerName,
    validation_split: validationSplit,
    early_stopping: earlyStopping,
    seed: seed as number,
  };

  const hidden = hp.hidden_units;
  let hiddenUnits: number[] = [...defaults.hidden_units];
  if (hidden !== undefined && hidden !== null) {
    if (
      !Array.isArray(hidden) ||
      hidden.length > L.hidden_layers[1] ||
      !hidden.every((u) => typeof u === 'number' && Number.isInteger(u) && u >= L.hidden_units[0] && u <= L.hidden_units[1])
    ) {
      problems.push(
        `hidden_units must be a list of at most ${L.hidden_layers[1]} integers from ${L.hidden_units[0]} to ${L.hidden_units[1]}`,
      );
    } else hiddenUnits = hidden;
  }
  if (preset) resolved.hidden_units = hiddenUnits;
  if (text) {
    // The preset reads hashed n-grams: max_vocabulary counts hash buckets, embedding_dim (when given) adds a projection.
    const given = (key: string) => hp[key] !== undefined && hp[key] !== null;
    const embeddingDim = given('embedding_dim') ? int('embedding_dim', L.embedding_dim, 0) : undefined;
    const T = HYPERPARAMETER_DEFAULTS.text;
    const maxVocabulary = int('max_vocabulary', L.max_vocabulary, preset ? T.buckets : T.max_vocabulary);
    const sequenceLength = given('sequence_length') ? int('sequence_length', L.sequence_length, 0) : undefined;
    const ngrams = int('ngrams', L.ngrams, T.ngrams);
    if (preset && embeddingDim !== undefined) resolved.embedding_dim = embeddingDim;
    if (preset) resolved.ngrams = ngrams;
    if (textData) {
      resolved.max_vocabulary = maxVocabulary;
      if (sequenceLength !== undefined) resolved.sequence_length = sequenceLength;
    }
  }
  if (image) {
    resolved.augmentation = resolveAugmentation(hp.augmentation, problems);
    if (options.baseModel) resolved.trainable_base_layers = int('trainable_base_layers', L.trainable_base_layers, 0);
  }
  if (problems.length > 0) throw MlError.list('invalid_hyperparameters', 'Invalid hyperparameters', problems);
  return resolved;
}

/** `augmentation`: null or absent (off), or `{flip?: boolean, shift?: 0 … 0.25}`. */
function resolveAugmentation(value: unknown, problems: string[]): ResolvedHyperparameters['augmentation'] {
  if (value === undefined || value === null || value === false) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push('augmentation must be an object {flip?: boolean, shift?: number from 0 to 0.25}, or null for none');
    return null;
  }
  const a = value as Record<string, unknown>;
  for (const key of Object.keys(a))
    if (key !== 'flip' && key !== 'shift') problems.push(`unknown augmentation field '${key}' (flip, shift)`);
  const flip = a.flip ?? false;
  if (typeof flip !== 'boolean') problems.push('augmentation.flip must be a boolean');
  const shift = a.shift ?? 0;
  const [min, max] = HYPERPARAMETER_LIMITS.shift;
  if (typeof shift !== 'number' || !Number.isFinite(shift) || shift < min || shift > max)
    problems.push(`augmentation.shift must be a number from ${min} to ${max} (a fraction of the image's size)`);
  return { flip: flip === true, shift: typeof shift === 'number' && shift >= min && shift <= max ? shift : 0 };
}
