import * as tf from '@tensorflow/tfjs';
import { decodeArtifact, sha256 } from './artifact/format.js';
import { loadLayersModel } from './artifact/model-io.js';
import { ensureBackend } from './backend.js';
import { encodeRows } from './data/prepare.js';
import { decodeIdf } from './data/hashed-text.js';
import { vocabularyIndex } from './data/text.js';
import { isMlError, MlError } from './errors.js';
import { explain } from './explain.js';
import { evaluateEncoded, forward, outputWidth, toLabelUnits } from './inference.js';
import { argMax } from './metrics.js';
import type { EncodedData } from './data/prepare.js';
import { isInputError } from './foundation/errors.js';
import { baseFeatures } from './foundation/features.js';
import { loadFoundation, type FoundationHandle } from './foundation/runtime.js';
import { foundationInternals } from './foundation/runtime.js';
import { headInputs, headWidth, imageHeadInputs } from './foundation/transfer.js';
import { cutActivations } from './foundation/backbone-cut.js';
import { cnnSaliency, headSaliency } from './saliency.js';
import type { ArtifactMetadata, Metrics, Prediction, PredictOptions, PredictResult, Row, Scores } from './types.js';

/**
 * An artifact loaded once for many calls (a worker's model cache). Its weights live in the
 * TF.js backend until `dispose()`; calls leave no tensors behind. A transfer-learned head holds
 * its base (`base`), loaded once per process and shared with every other head on it: disposing
 * the head leaves the base loaded.
 */
export class LoadedModel {
  private vocabulary: Map<string, number> | undefined;
  private idf: Float32Array | undefined;
  private disposed = false;

  private constructor(
    private readonly model: tf.LayersModel,
    readonly metadata: ArtifactMetadata,
    readonly parameters: number,
    /** The artifact's size: what a byte-bounded cache counts. */
    readonly bytes: number,
    readonly sha256: string,
    /** The foundation model a transfer-learned head runs on (shared, never disposed here). */
    readonly base: FoundationHandle | null,
  ) {
    if (metadata.preprocessing.kind === 'text') this.vocabulary = vocabularyIndex(metadata.preprocessing);
    if (metadata.preprocessing.kind === 'hashed-ngrams') this.idf = decodeIdf(metadata.preprocessing);
  }

  static async load(artifact: Uint8Array): Promise<LoadedModel> {
    await ensureBackend();
    const decoded = decodeArtifact(artifact);
    const base = await loadBase(decoded.metadata);
    const model = await loadLayersModel(decoded);
    const loaded = new LoadedModel(model, decoded.metadata, decoded.parameters, artifact.byteLength, sha256(artifact), base);
    const expected = decoded.metadata.labels ? decoded.metadata.labels.length : 1;
    const pre = decoded.metadata.preprocessing;
    const inputs = model.inputs[0].shape[1];
    if (outputWidth(model) !== expected) {
      loaded.dispose();
      throw new MlError('invalid_artifact', `The model has ${outputWidth(model)} outputs; its metadata expects ${expected}`);
    }
    if (pre.kind === 'foundation' && inputs !== headWidth(pre)) {
      loaded.dispose();
      throw new MlError('invalid_artifact', `The head reads ${inputs} features; its preprocessing gives ${headWidth(pre)}`);
    }
    return loaded;
  }

  /** Predictions for a batch of inputs (and explanations when asked). Bad inputs: MlError `invalid_input`. */
  async predict(inputs: Row[], options: PredictOptions = {}): Promise<PredictResult> {
    const { data, scores } = await this.forwardRows(inputs, options);
    const predictions = predictionsOf(scores);
    const predicted = scores.predicted;
    const result: PredictResult = { predictions };
    const pre = this.metadata.preprocessing;
    if (options.explain && pre.kind === 'image') result.explanations = cnnSaliency(this.model, pre, data, predicted!);
    else if (options.explain && pre.kind === 'foundation' && pre.input === 'image') {
      result.explanations = headSaliency(foundationInternals(this.base!).image!, this.model, pre, data.images!, predicted!);
    }
    // text heads give no explanations: attributions through the sentence encoder are not computed
    else if (options.explain && !this.base) result.explanations = explain(this.model, this.metadata, data, predicted);
    return result;
  }

  /**
   * The raw predictions of a batch, without a prediction object per row (a batch prediction formats
   * them itself): the same numbers `predict` answers, in typed arrays that cross a process boundary
   * as one copy. Bad inputs: MlError `invalid_input`.
   */
  async scores(inputs: Row[], options: Pick<PredictOptions, 'baseFeatures'> = {}): Promise<Scores> {
    return (await this.forwardRows(inputs, options)).scores;
  }

  private async forwardRows(inputs: Row[], options: PredictOptions): Promise<{ data: EncodedData; scores: Scores }> {
    this.assertOpen();
    const encoded = encodeRows(this.metadata, inputs, {
      labels: false,
      what: 'inputs',
      missing: 'refuse',
      keepTokens: options.explain,
      vocabulary: this.vocabulary,
      idf: this.idf,
    });
    const data = await this.withBaseFeatures(encoded, 'invalid_input', options.baseFeatures);
    const outputs = forward(this.model, data);
    const labels = this.metadata.labels;
    if (!labels) return { data, scores: { labels: null, values: toLabelUnits(outputs, this.metadata), predicted: null } };
    const k = labels.length;
    const predicted = new Int32Array(data.n);
    for (let i = 0; i < data.n; i++) predicted[i] = argMax(outputs, i * k, k);
    return { data, scores: { labels, values: outputs, predicted } };
  }

  /**
   * Evaluation metrics on labelled rows. Bad rows: MlError `invalid_data`. A head on a base takes the rows' base
   * features from `baseFeatures` when given (a feature cache, in row order), else computes them.
   */
  async evaluate(rows: Row[], baseFeatures?: Float32Array[]): Promise<Metrics> {
    this.assertOpen();
    if (!Array.isArray(rows) || rows.length === 0) throw new MlError('invalid_data', 'The dataset has no rows');
    const encoded = encodeRows(this.metadata, rows, { labels: true, missing: 'impute', vocabulary: this.vocabulary, idf: this.idf });
    const data = await this.withBaseFeatures(encoded, 'invalid_data', baseFeatures);
    return evaluateEncoded(this.model, this.metadata, data);
  }

  /**
   * A head's input rows from raw texts: the base's features (or `features`, the caller's cache of them, in row order)
   * beside the text's n-grams. Other models' data is returned as it is.
   */
  private async withBaseFeatures(
    data: EncodedData,
    code: 'invalid_input' | 'invalid_data',
    features?: Float32Array[],
  ): Promise<EncodedData> {
    const pre = this.metadata.preprocessing;
    if (pre.kind !== 'foundation' || !this.base) return data;
    const named = (err: { index: number; message: string }) =>
      new MlError(
        code,
        `${code === 'invalid_input' ? `inputs[${err.index}]` : `row ${err.index + 1}`}: ${err.message.replace(/^input\[\d+\] /, '')}`,
      );
    if (pre.input === 'image') {
      const images = data.images!;
      try {
        if (pre.fine_tuned) {
          // the cached features are the frozen base's; a fine-tuned top reads the bottom's activations
          const { x, width } = await cutActivations(foundationInternals(this.base).image!, pre.fine_tuned.cut, images);
          return { ...data, width, x };
        }
        const computed = features ?? (await baseFeatures(this.base, images));
        if (computed.length !== images.length) throw new Error(`${computed.length} base feature rows for ${images.length} images`);
        return { ...data, width: pre.base_width, x: imageHeadInputs(pre, computed) };
      } catch (err) {
        if (isInputError(err)) throw named(err);
        throw err;
      }
    }
    const texts = data.texts!;
    let computed = features;
    if (!computed) {
      try {
        computed = await baseFeatures(this.base, texts);
      } catch (err) {
        if (isInputError(err)) throw named(err);
        throw err;
      }
    }
    if (computed.length !== texts.length) throw new Error(`${computed.length} base feature rows for ${texts.length} texts`);
    return { ...data, width: headWidth(pre), x: headInputs(pre, computed, texts) };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }

  private assertOpen(): void {
    if (this.disposed) throw new Error('LoadedModel used after dispose()');
  }
}

/** The base of a transfer-learned artifact, from the process's cache, checked against the sha256 it was trained on. */
async function loadBase(metadata: ArtifactMetadata): Promise<FoundationHandle | null> {
  const pre = metadata.preprocessing;
  if (pre.kind !== 'foundation') return null;
  let handle: FoundationHandle;
  try {
    handle = await loadFoundation(pre.base.id);
  } catch (err) {
    throw new MlError(
      'invalid_artifact',
      `The base model '${pre.base.id}' cannot be loaded: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (handle.sha256 !== pre.base.sha256) {
    throw new MlError(
      'invalid_artifact',
      `The head was trained on '${pre.base.id}' with weights ${pre.base.sha256.slice(0, 12)}…; this process has ${handle.sha256.slice(0, 12)}…`,
    );
  }
  return handle;
}

/**
 * Whether an artifact serves: it is loaded exactly as serving loads it (`LoadedModel.load`) and
 * predicts once, through `LoadedModel.predict`, on one input of zeros (empty text), which finds
 * the kernels and dtypes that fail only at run time. Refusals are MlError `invalid_model` (or
 * `invalid_artifact`), naming the layer or weight where TF.js lets us know it.
 */
export async function checkLoads(artifact: Uint8Array): Promise<void> {
  let model: LoadedModel;
  try {
    model = await LoadedModel.load(artifact);
  } catch (err) {
    throw (await weightFitProblems(artifact)) ?? err;
  }
  try {
    let result: PredictResult;
    try {
      result = await model.predict([zeroInput(model.metadata)]);
    } catch (err) {
      if (isMlError(err)) throw err;
      throw new MlError('invalid_model', `TF.js cannot run the model: ${err instanceof Error ? err.message : String(err)}`);
    }
    const p = result.predictions[0] ?? {};
    const outputs = 'probabilities' in p ? Object.values(p.probabilities ?? {}) : [p.value];
    if (outputs.length === 0 || !outputs.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new MlError('invalid_model', `The model's output for an input of zeros is not finite (${JSON.stringify(outputs.slice(0, 5))})`);
    }
  } finally {
    model.dispose();
  }
}

/** One input row of zeros (tabular) or empty text, as a client would send it. */
function zeroInput(metadata: ArtifactMetadata): Row {
  const pre = metadata.preprocessing;
  // a base cannot encode an empty text
  if (pre.kind === 'foundation' && pre.input === 'text') return { [pre.text_field]: 'a' };
  if (pre.kind === 'foundation' || pre.kind === 'image') return { [pre.image_field]: BLACK_PNG };
  if (pre.kind !== 'tabular') return { [pre.text_field]: '' };
  return Object.fromEntries(pre.features.map((f) => [f, 0]));
}

/**
 * Why an artifact's weights do not fit its model, weight by weight (shape, dtype, missing,
 * unknown), as an MlError; null when they fit (the load failed for another reason). Builds the
 * topology without weights.
 */
async function weightFitProblems(artifact: Uint8Array): Promise<MlError | null> {
  let decoded: ReturnType<typeof decodeArtifact>;
  let built: tf.LayersModel;
  try {
    decoded = decodeArtifact(artifact);
    built = await tf.models.modelFromJSON({ modelTopology: decoded.json.modelTopology } as Parameters<typeof tf.models.modelFromJSON>[0]);
  } catch (err) {
    return isMlError(err)
      ? err
      : new MlError('invalid_model', `TF.js cannot build the model: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const specs = new Map(decoded.weightSpecs.map((s) => [s.name, s]));
    const problems: string[] = [];
    for (const w of built.weights) {
      const spec = specs.get(w.originalName);
      specs.delete(w.originalName);
      if (!spec) problems.push(`the model needs weight '${w.originalName}' ${JSON.stringify(w.shape)}, which is not in weightsManifest`);
      else if (JSON.stringify(spec.shape) !== JSON.stringify(w.shape))
        problems.push(`weight '${spec.name}' has shape ${JSON.stringify(spec.shape)}; the layer needs ${JSON.stringify(w.shape)}`);
      else if (spec.dtype !== w.dtype) problems.push(`weight '${spec.name}' has dtype ${spec.dtype}; the layer needs ${w.dtype}`);
    }
    for (const name of specs.keys()) problems.push(`weight '${name}' is not a weight of any layer of the model`);
    return problems.length > 0 ? MlError.list('invalid_model', 'The weights do not fit the model', problems) : null;
  } finally {
    built.dispose();
  }
}

export async function loadModel(artifact: Uint8Array): Promise<LoadedModel> {
  return LoadedModel.load(artifact);
}

export async function predict(artifact: Uint8Array, inputs: Row[], options?: PredictOptions): Promise<PredictResult> {
  const model = await LoadedModel.load(artifact);
  try {
    return await model.predict(inputs, options);
  } finally {
    model.dispose();
  }
}

export async function evaluate(artifact: Uint8Array, rows: Row[], baseFeatures?: Float32Array[]): Promise<Metrics> {
  const model = await LoadedModel.load(artifact);
  try {
    return await model.evaluate(rows, baseFeatures);
  } finally {
    model.dispose();
  }
}

/** An 8×8 black PNG: the zero input of an image model. */
const BLACK_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAIElEQVR4AYXBAQEAAAiAIPP/53qQMMDykCBBggQJEiQcDFMBD2KE+E8AAAAASUVORK5CYII=';

/** A prediction object per row from a batch's scores: `{label, probabilities}` of a classifier, `{value}` of a regression. */
export function predictionsOf(scores: Scores): Prediction[] {
  const { labels, values, predicted } = scores;
  if (!labels || !predicted) return Array.from(values, (value) => ({ value }));
  const k = labels.length;
  const predictions: Prediction[] = new Array(predicted.length);
  for (let i = 0; i < predicted.length; i++) {
    const probabilities: Record<string, number> = {};
    for (let j = 0; j < k; j++) probabilities[labels[j]] = values[i * k + j];
    predictions[i] = { label: labels[predicted[i]], probabilities };
  }
  return predictions;
}
