/** The shapes libs/ml takes and gives. No TF.js here: the API imports these. */

export type Task = 'classification' | 'regression' | 'text-classification' | 'image-classification';
export const TASKS: readonly Task[] = ['classification', 'regression', 'text-classification', 'image-classification'];

/** A dataset row as read from the store: column name → value. */
export type Row = Record<string, string | number | boolean | null | undefined>;

export interface DatasetSpec {
  task: Task;
  /** The label column. */
  label: string;
  /** The text column (text-classification only). */
  textField?: string;
  /** Tabular feature columns, in the model's input order; default: every column of the first row but the label. */
  features?: string[];
  /** The column holding each row's encoded image, base64 of its PNG or JPEG bytes (image-classification; default `image`). */
  imageField?: string;
}

export type OptimizerName = 'adam' | 'sgd' | 'rmsprop' | 'adagrad';
export const OPTIMIZERS: readonly OptimizerName[] = ['adam', 'sgd', 'rmsprop', 'adagrad'];

export interface EarlyStopping {
  /** Epochs without improvement before stopping. */
  patience: number;
  /** The smallest decrease of the monitored loss that counts as an improvement. */
  min_delta?: number;
  /** Put back the weights of the best epoch at the end (default true). */
  restore_best_weights?: boolean;
}

/** Hyperparameters as the API takes them (snake_case). Every field is optional. */
export interface Hyperparameters {
  epochs?: number;
  batch_size?: number;
  learning_rate?: number;
  optimizer?: OptimizerName;
  validation_split?: number;
  early_stopping?: EarlyStopping | null;
  seed?: number;
  /** Preset only: widths of the hidden dense layers (MLP default [128, 128]; text default []). */
  hidden_units?: number[];
  /** Text preset only: width of the token embedding (default 64). */
  embedding_dim?: number;
  /** Text only: the vocabulary cap, padding and out-of-vocabulary ids included (default 20,000). */
  max_vocabulary?: number;
  /**
   * Text only. The default (hashed n-gram) model: tokens read per text (default all, up to 100,000).
   * A sequence model (custom Embedding architecture): tokens per example (default the 95th percentile, 4 to 256).
   */
  sequence_length?: number;
  /** Text preset only: the longest word n-gram hashed (default 1: words; 2 adds adjacent pairs). */
  ngrams?: number;
  /** Images only: random changes to each training image, drawn per batch (default off). */
  augmentation?: ImageAugmentation | null;
  /** Images on a base model: fine-tune this many of the backbone's top layers with weights, with the head (default 0: frozen). */
  trainable_base_layers?: number;
}

/**
 * Light augmentation of training images: `flip` mirrors half of them left to right; `shift` moves each by up to this
 * fraction of its width and height (0 to 0.25), the uncovered border filled with black.
 */
export interface ImageAugmentation {
  flip?: boolean;
  shift?: number;
}

/** Hyperparameters with every default filled in: what a version records and what reproduces it. */
export interface ResolvedHyperparameters {
  epochs: number;
  batch_size: number;
  learning_rate: number;
  optimizer: OptimizerName;
  validation_split: number;
  early_stopping: Required<EarlyStopping> | null;
  seed: number;
  hidden_units?: number[];
  embedding_dim?: number;
  max_vocabulary?: number;
  sequence_length?: number;
  ngrams?: number;
  augmentation?: Required<ImageAugmentation> | null;
  trainable_base_layers?: number;
}

/** What a model takes, as shown on a version. */
export interface InputSchema {
  task: Task;
  label: string;
  /** Tabular: the numeric features in input order. */
  features?: Array<{ name: string; type: 'number' }>;
  /** Text: the column holding the text, and the tokenization it gets. */
  text_field?: string;
  sequence_length?: number;
  vocabulary_size?: number;
  /** Transfer-learned heads: the foundation model the raw inputs go through first. */
  base_model?: FoundationBase;
  /** Text read as hashed n-grams: the feature width and the longest n-gram. */
  buckets?: number;
  ngrams?: number;
  /** Images: the column holding the base64 PNG/JPEG, and (models from scratch) the size every image is resized to. */
  image_field?: string;
  image?: { width: number; height: number; channels: 1 | 3 };
}

/** Standardization of tabular features with statistics of the training split. */
export interface TabularPreprocessing {
  kind: 'tabular';
  features: string[];
  mean: number[];
  std: number[];
  /** Regression: the label is standardized too, and predictions are mapped back. */
  target?: { mean: number; std: number };
}

/** Tokenization of text; `vocabulary[id]` is the token of id, 0 is padding and 1 out-of-vocabulary. */
export interface TextPreprocessing {
  kind: 'text';
  text_field: string;
  tokenizer: 'lowercase-words-punctuation';
  vocabulary: string[];
  sequence_length: number;
  pad_id: 0;
  oov_id: 1;
}

/**
 * Text read whole as hashed word n-grams (see data/hashed-ngrams.ts): the model's input is a vector
 * of `buckets` sublinear-TF × IDF weights with unit L2 norm.
 */
export interface HashedNgramPreprocessing {
  kind: 'hashed-ngrams';
  text_field: string;
  tokenizer: 'lowercase-words-punctuation';
  hash: 'fnv1a32-mod';
  buckets: number;
  ngrams: number;
  max_tokens: number;
  weighting: 'sublinear-tf-idf-l2';
  /** The IDF of each bucket, fitted on the training split: base64 of little-endian float32. */
  idf: string;
}

/**
 * Images as a model from scratch reads them: decoded (PNG or JPEG, EXIF orientation applied), resized to
 * `width` × `height` (see data/image.ts: bilinear with pixel centres aligned, after a box filter when shrinking
 * more than twofold), turned grey when `channels` is 1 (ITU-R 601 luma), and multiplied by `scale` (to [0, 1]).
 * The model's input is the flat row-major height × width × channels vector (its first layer reshapes it).
 */
export interface ImagePreprocessing {
  kind: 'image';
  image_field: string;
  width: number;
  height: number;
  channels: 1 | 3;
  resize: 'bilinear';
  scale: number;
}

/**
 * A head on a frozen foundation model (transfer learning): the base's features of the raw text, standardized, beside
 * hashed word n-grams (TF-IDF with the training split's idf). Serving computes the base's features with the same base.
 */
export interface FoundationTextPreprocessing {
  kind: 'foundation';
  base: FoundationBase;
  input: 'text';
  text_field: string;
  /** Width of the base's feature vectors (baseFeatures). */
  base_width: number;
  /** Standardization of the base features (training split), base64 of float32. */
  base_mean: string;
  base_std: string;
  /** Weight of the base block against the n-gram block (each has about unit norm). */
  base_weight: number;
  /** Hashed n-grams of the raw text; null: the base's features alone. `idf` is base64 of float32. */
  ngrams: { buckets: number; ngrams: number; max_tokens: number; idf: string } | null;
  /** Regression: the label is standardized too. */
  target?: { mean: number; std: number };
}

/**
 * A head on an image foundation model (MobileNetV2): its features of each image (decoded and resized by the base's
 * own preprocessing), standardized and scaled by `base_weight / sqrt(base_width)`; no n-grams.
 * With `fine_tuned`, the artifact holds the backbone's layers above `cut` (trained) and the head: its input is the
 * flat activations of layer `cut` (`cut_shape`), which serving computes with the frozen bottom of the same base; the
 * standardization is not applied (the top computes the features).
 */
export interface FoundationImagePreprocessing {
  kind: 'foundation';
  base: FoundationBase;
  input: 'image';
  image_field: string;
  base_width: number;
  base_mean: string;
  base_std: string;
  base_weight: number;
  ngrams: null;
  fine_tuned?: { trainable_base_layers: number; cut: string; cut_shape: number[] };
}

export type FoundationPreprocessing = FoundationTextPreprocessing | FoundationImagePreprocessing;

/** A foundation model a version depends on: its catalog id and the sha256 of its weights as shipped. */
export interface FoundationBase {
  id: string;
  sha256: string;
}

export type TextInputPreprocessing = TextPreprocessing | HashedNgramPreprocessing;
export type Preprocessing = TabularPreprocessing | TextInputPreprocessing | ImagePreprocessing | FoundationPreprocessing;

/** `userDefinedMetadata.aiaas` of an artifact. */
export interface ArtifactMetadata {
  version: 1;
  task: Task;
  preprocessing: Preprocessing;
  input_schema: InputSchema;
  labels: string[] | null;
  /** Transfer-learned heads: the frozen base that serving runs first (never its weights). */
  base?: FoundationBase;
}

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  /** Mean categorical cross-entropy. */
  loss: number;
  macro_f1: number;
  per_class: Record<string, ClassMetrics>;
  /** `matrix[i][j]`: examples of class `labels[i]` predicted as `labels[j]`. */
  confusion_matrix: { labels: string[]; matrix: number[][] };
  samples: number;
}

export interface RegressionMetrics {
  mse: number;
  rmse: number;
  mae: number;
  r2: number;
  /** The mean squared error, under the name every task shares. */
  loss: number;
  samples: number;
}

export type Metrics = ClassificationMetrics | RegressionMetrics;

export interface EpochProgress {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Mean training loss of the epoch (regression: MSE in the label's units). */
  loss: number;
  val_loss: number | null;
  /** `accuracy` / `val_accuracy` for classification, `mae` / `val_mae` for regression. */
  metrics: Record<string, number>;
  elapsed_seconds: number;
  /** Time left at the current pace for the planned epochs (early stopping may end sooner). */
  eta_seconds: number;
}

export interface BatchProgress {
  epoch: number;
  /** 1-based within the epoch. */
  batch: number;
  batches: number;
  loss: number;
}

export type BackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** True when computation runs on a GPU. */
  gpu: boolean;
  /** The backends tried before this one and why each was passed over. */
  skipped: Array<{ name: BackendName; reason: string }>;
}

export interface TrainOptions {
  spec: DatasetSpec;
  rows: Row[];
  hyperparameters?: Hyperparameters;
  /** A custom TF.js layers topology (`model.toJSON()` / the `modelTopology` of a model.json). */
  architecture?: unknown;
  /** An artifact to fine-tune: its weights and preprocessing are the starting point. */
  base?: Buffer;
  /**
   * Transfer learning: train a head on a frozen foundation model. `features[i]` is `baseFeatures(handle, [input of
   * rows[i]])[0]` (row order: the text, or the decoded base64 bytes of the image); a text head also reads the raw
   * text of each row. Not with `base` or `architecture`. Images with `trainable_base_layers`: no features (undefined
   * or empty): the frozen bottom runs here.
   */
  baseModel?: FoundationBase & { features?: Float32Array[] };
  /** The tenant's `max_model_parameters`; default unlimited. */
  maxParameters?: number;
  onEpoch?: (progress: EpochProgress) => void;
  onBatch?: (progress: BatchProgress) => void;
  /** Checked between batches; training ends with MlError `canceled`. */
  signal?: AbortSignal;
}

export interface TrainResult {
  artifact: Buffer;
  sha256: string;
  /** Evaluation of the final weights on the validation split (on the training split when there is none). */
  metrics: Metrics;
  metrics_split: 'validation' | 'training';
  history: EpochProgress[];
  /** Epoch whose weights the artifact holds (the best one when early stopping restored it). */
  best_epoch: number;
  stopped_early: boolean;
  parameters: number;
  /** The TF.js layers topology (`modelTopology` of the artifact). */
  architecture: Record<string, unknown>;
  hyperparameters: ResolvedHyperparameters;
  input_schema: InputSchema;
  labels: string[] | null;
  backend: BackendName;
  train_samples: number;
  validation_samples: number;
  duration_seconds: number;
}

export type Prediction = { label: string; probabilities: Record<string, number> } | { value: number };

/**
 * Gradient × input on a coarse grid over the image: `values[y * width + x]`, summed over channels and over the input
 * pixels of the cell, absolute, scaled so that the largest is 1.
 */
export interface SaliencyMap {
  width: number;
  height: number;
  values: number[];
}

/** Gradient × input: per feature for tabular models, per token (in text order) for text models, a saliency map per image. */
export type Explanation = Record<string, number> | Array<{ token: string; score: number }> | { saliency: SaliencyMap };

export interface PredictOptions {
  explain?: boolean;
  /** Heads on a base: the inputs' base features when the caller has them (a cache), in input order. */
  baseFeatures?: Float32Array[];
}

/**
 * A batch's raw predictions: a classifier's `labels`, its probabilities (n × labels, row-major) in
 * `values` and each row's label index in `predicted`; a regression's values in label units.
 */
export interface Scores {
  labels: string[] | null;
  values: Float32Array;
  predicted: Int32Array | null;
}

export interface PredictResult {
  predictions: Prediction[];
  explanations?: Explanation[];
}
