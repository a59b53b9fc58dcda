/**
 * libs/ml: data preparation, training, evaluation, prediction, explanation and serialization
 * of models over TF.js.
 *
 * Importing this module never loads TF.js (the API imports it for types, defaults and the
 * JSON checks). The functions marked "TF.js" load it on their first call, in the worker's
 * sandboxed child process.
 */
import type { FoundationHandle } from './foundation/runtime.js';
import type { ImageInputLimits } from './foundation/catalog.js';
import type { RgbImage } from './foundation/image-decode.js';
import type { TextFeatureOptions } from './foundation/features.js';
import type { LoadedModel } from './predict.js';
import type { BackendInfo, Metrics, PredictOptions, PredictResult, Row, TrainOptions, TrainResult } from './types.js';

export * from './types.js';
export { MlError, isMlError, type MlErrorCode } from './errors.js';
export { HYPERPARAMETER_DEFAULTS, HYPERPARAMETER_LIMITS, resolveHyperparameters, type ResolveOptions } from './hyperparameters.js';
export { readArtifact, decodeArtifact, sha256, type ArtifactJson, type ArtifactSummary, type WeightSpec } from './artifact/format.js';
export {
  checkTopology,
  normalizeTopology,
  ALLOWED_LAYERS,
  ALLOWED_ACTIVATIONS,
  type TopologyReport,
  type TopologyRequirements,
} from './artifact/topology.js';
export {
  importArtifact,
  importLayersModel,
  inlineWeightFiles,
  weightValueProblems,
  type ImportMeta,
  type ImportResult,
} from './artifact/import.js';
export { MIN_STEP_SECONDS, minimumTrainingTime, presetParameters, type PresetShape, type TrainingTimeBound } from './sizing.js';
export { checkInputs, encodeRows, type EncodedData } from './data/prepare.js';
export { tokenize } from './data/text.js';
export { classificationMetrics, regressionMetrics } from './metrics.js';
export {
  FOUNDATION_MODELS,
  foundationModel,
  foundationWeights,
  type FoundationKind,
  type FoundationModelSpec,
  type ImageInputLimits,
  type TextInputLimits,
} from './foundation/catalog.js';
export { InputError, isInputError } from './foundation/errors.js';
export { imageHeader } from './foundation/image-header.js';
export { IMAGE_LIMITS } from './foundation/catalog.js';
export { chooseImageSize, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE } from './data/image.js';
export { imageBlocks } from './sizing.js';
export type { EmbedResult, FoundationHandle } from './foundation/runtime.js';
export type { RgbImage } from './foundation/image-decode.js';
export type { LoadedModel };

/**
 * No TF.js: decodes a PNG or JPEG to RGB (pngjs, jpeg-js), its header checked against the limits
 * first; throws InputError. Loaded on the first call, so that importing this module loads no decoder.
 */
export async function decodeImage(bytes: Uint8Array, index: number, limits: ImageInputLimits): Promise<RgbImage> {
  return (await import('./foundation/image-decode.js')).decodeImage(bytes, index, limits);
}

/** TF.js. Picks the backend (see backend.ts); pass the caller's TF_BACKEND as `forced`. Call once per process. */
export async function initBackend(forced?: string | null): Promise<BackendInfo> {
  return (await import('./backend.js')).initBackend(forced);
}

/** TF.js. Trains a model and returns its artifact; see TrainOptions. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  return (await import('./train.js')).train(options);
}

/** TF.js. Metrics of an artifact on labelled rows. */
/** Metrics of a version on labelled rows; a head on a base takes the rows' cached `baseFeatures` when given. */
export async function evaluate(artifact: Uint8Array, rows: Row[], baseFeatures?: Float32Array[]): Promise<Metrics> {
  return (await import('./predict.js')).evaluate(artifact, rows, baseFeatures);
}

/** TF.js. Predictions (and explanations) of an artifact for a batch of inputs. */
export async function predict(artifact: Uint8Array, inputs: Row[], options?: PredictOptions): Promise<PredictResult> {
  return (await import('./predict.js')).predict(artifact, inputs, options);
}

/** TF.js. Loads an artifact as serving does and predicts once on zeros; throws MlError `invalid_model`/`invalid_artifact` if it cannot serve. */
export async function checkLoads(artifact: Uint8Array): Promise<void> {
  return (await import('./predict.js')).checkLoads(artifact);
}

/** TF.js. Loads an artifact for repeated calls; `dispose()` it when evicted. */
export async function loadModel(artifact: Uint8Array): Promise<LoadedModel> {
  return (await import('./predict.js')).loadModel(artifact);
}

/** TF.js. A foundation model of the catalog, loaded once per process (cached by id): later calls return the same handle. */
export async function loadFoundation(id: string): Promise<FoundationHandle> {
  return (await import('./foundation/runtime.js')).loadFoundation(id);
}

/** TF.js. The per-row features a head sees from its base (deterministic per input): what a feature cache stores. */
export async function baseFeatures(
  handle: FoundationHandle,
  inputs: string[] | Uint8Array[],
  options?: TextFeatureOptions,
): Promise<Float32Array[]> {
  return (await import('./foundation/features.js')).baseFeatures(handle, inputs, options);
}

/** TF.js. The foundation models loaded in this process (what a model cache counts once, beside the heads). */
export async function loadedFoundations(): Promise<FoundationHandle[]> {
  return (await import('./foundation/runtime.js')).loadedFoundations();
}
