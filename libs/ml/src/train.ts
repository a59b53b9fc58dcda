import * as tf from '@tensorflow/tfjs';
import { decodeArtifact, type DecodedArtifact } from './artifact/format.js';
import { loadLayersModel, serializeModel } from './artifact/model-io.js';
import { checkTopology, type TopologyReport } from './artifact/topology.js';
import { ensureBackend } from './backend.js';
import { featureColumns, prepareTraining, type EncodedData } from './data/prepare.js';
import { MlError } from './errors.js';
import { resolveHyperparameters } from './hyperparameters.js';
import { evaluateEncoded, forward } from './inference.js';
import { classificationMetrics, regressionMetrics } from './metrics.js';
import { buildPreset, type PresetShape } from './presets.js';
import { seededRandom, shuffleInPlace, withSeededMathRandom } from './random.js';
import { TASKS, type EpochProgress, type ResolvedHyperparameters, type TrainOptions, type TrainResult } from './types.js';

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
  if (opts.base && opts.architecture !== undefined) throw new MlError('architecture_not_allowed', 'A fine-tuned model keeps its base architecture: give base or architecture, not both');
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

  const random = seededRandom(hp.seed);
  const prepared = prepareTraining(spec, opts.rows, { validationSplit: hp.validation_split, random, maxVocabulary, sequenceLength, base: base?.metadata });
  const { metadata } = prepared;
  if (text && metadata.preprocessing.kind === 'text') hp.sequence_length = metadata.preprocessing.sequence_length;
  const shape: PresetShape = {
    task: spec.task,
    inputWidth: prepared.train.width,
    outputWidth: metadata.labels ? metadata.labels.length : 1,
    vocabularySize: metadata.preprocessing.kind === 'text' ? metadata.preprocessing.vocabulary.length : undefined,
  };
  throwIfAborted(opts.signal);

  const model = await buildModel(opts, shape, hp, base);
  let optimizer: tf.Optimizer | null = null;
  let bestWeights: tf.Tensor[] | null = null;
  try {
    const parameters = model.countParams();
    if (opts.maxParameters !== undefined && parameters > opts.maxParameters) {
      throw new MlError('too_many_parameters', `The model has ${parameters} parameters; the limit is ${opts.maxParameters}`);
    }
    optimizer = makeOptimizer(hp);
    const pre = metadata.preprocessing;
    const lossScale = pre.kind === 'tabular' && pre.target ? pre.target.std ** 2 : 1;
    const loop = new TrainingLoop(model, optimizer, prepared.train, prepared.validation, metadata.labels, hp, opts, lossScale);
    const outcome = await loop.run();
    bestWeights = outcome.bestWeights;
    if (bestWeights) model.setWeights(bestWeights);
    throwIfAborted(opts.signal);

    const evaluated = prepared.validation ?? prepared.train;
    const metrics = evaluateEncoded(model, metadata, evaluated);
    const { artifact, sha256, json } = await serializeModel(model, metadata);
    return {
      artifact,
      sha256,
      metrics,
      metrics_split: prepared.validation ? 'validation' : 'training',
      history: outcome.history,
      best_epoch: outcome.bestEpoch,
      stopped_early: outcome.stoppedEarly,
      parameters,
      architecture: json.modelTopology,
      hyperparameters: hp,
      input_schema: metadata.input_schema,
      labels: metadata.labels,
      backend: backend.name,
      train_samples: prepared.train.n,
      validation_samples: prepared.validation?.n ?? 0,
      duration_seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (bestWeights) tf.dispose(bestWeights);
    optimizer?.dispose();
    model.dispose();
  }
}

async function buildModel(opts: TrainOptions, shape: PresetShape, hp: ResolvedHyperparameters, base: DecodedArtifact | null): Promise<tf.LayersModel> {
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
    const pending = withSeededMathRandom(init, () => tf.models.modelFromJSON({ modelTopology: report.topology } as Parameters<typeof tf.models.modelFromJSON>[0]));
    try {
      return await pending;
    } catch (err) {
      throw new MlError('architecture_not_allowed', `TF.js cannot build the architecture: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const planned = presetParameters(shape, hp);
  if (opts.maxParameters !== undefined && planned > opts.maxParameters) {
    throw new MlError('too_many_parameters', `The model would have ${planned} parameters; the limit is ${opts.maxParameters}`);
  }
  return withSeededMathRandom(init, () => buildPreset(shape, hp));
}

/** The preset's parameter count, known before anything is allocated. */
export function presetParameters(shape: PresetShape, hp: ResolvedHyperparameters): number {
  let width = shape.inputWidth;
  let total = 0;
  if (shape.task === 'text-classification') {
    total += shape.vocabularySize! * hp.embedding_dim!;
    width = hp.embedding_dim!;
  }
  for (const units of [...(hp.hidden_units ?? []), shape.outputWidth]) {
    total += width * units + units;
    width = units;
  }
  return total;
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

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MlError('canceled', 'Training was canceled');
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

interface LoopOutcome {
  history: EpochProgress[];
  bestEpoch: number;
  stoppedEarly: boolean;
  bestWeights: tf.Tensor[] | null;
}

class TrainingLoop {
  private readonly classes: number;
  private readonly batchSize: number;
  private readonly batchX: Float32Array | Int32Array;
  private readonly batchY: Float32Array;
  private readonly variables: tf.Variable[];
  /** Regression trains on a standardized label; losses are reported in the label's units. */
  private readonly lossScale: number;
  private readonly order: Int32Array;
  private readonly random: () => number;
  private readonly stepRandom: () => number;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly optimizer: tf.Optimizer,
    private readonly data: EncodedData,
    private readonly validation: EncodedData | null,
    private readonly labels: string[] | null,
    private readonly hp: ResolvedHyperparameters,
    private readonly opts: TrainOptions,
    lossScale: number,
  ) {
    this.classes = labels ? labels.length : 1;
    this.batchSize = Math.min(hp.batch_size, data.n);
    this.batchX = data.x instanceof Int32Array ? new Int32Array(this.batchSize * data.width) : new Float32Array(this.batchSize * data.width);
    this.batchY = new Float32Array(this.batchSize * this.classes);
    this.variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.lossScale = lossScale;
    this.order = Int32Array.from({ length: data.n }, (_, i) => i);
    // Batch order and training-time randomness (dropout) draw from their own streams of the seed.
    this.random = seededRandom((hp.seed ^ 0x27d4eb2f) >>> 0);
    this.stepRandom = seededRandom((hp.seed ^ 0x165667b1) >>> 0);
  }

  async run(): Promise<LoopOutcome> {
    const { hp, opts } = this;
    const history: EpochProgress[] = [];
    const es = hp.early_stopping;
    let best = Infinity;
    let bestEpoch = 0;
    let wait = 0;
    let stoppedEarly = false;
    let bestWeights: tf.Tensor[] | null = null;
    const started = performance.now();
    try {
      for (let epoch = 1; epoch <= hp.epochs; epoch++) {
        const { loss, metric } = await this.epoch(epoch);
        const progress: EpochProgress = { epoch, epochs: hp.epochs, loss, val_loss: null, metrics: {}, elapsed_seconds: 0, eta_seconds: 0 };
        const metricName = this.labels ? 'accuracy' : 'mae';
        progress.metrics[metricName] = metric;
        if (this.validation) {
          const val = this.validate();
          progress.val_loss = val.loss;
          progress.metrics[`val_${metricName}`] = val.metric;
        }
        const elapsed = (performance.now() - started) / 1000;
        progress.elapsed_seconds = elapsed;
        progress.eta_seconds = (elapsed / epoch) * (hp.epochs - epoch);
        history.push(progress);
        opts.onEpoch?.(progress);

        const monitored = progress.val_loss ?? progress.loss;
        if (!es) {
          bestEpoch = epoch;
          continue;
        }
        if (monitored < best - es.min_delta) {
          best = monitored;
          bestEpoch = epoch;
          wait = 0;
          if (es.restore_best_weights && epoch < hp.epochs) {
            if (bestWeights) tf.dispose(bestWeights);
            bestWeights = tf.tidy(() => this.model.getWeights().map((w) => w.clone()));
          }
        } else if (++wait >= es.patience) {
          stoppedEarly = epoch < hp.epochs;
          break;
        }
      }
    } catch (err) {
      if (bestWeights) tf.dispose(bestWeights);
      throw err;
    }
    // The last epoch's weights are already in the model when it was the best one.
    if (bestWeights && bestEpoch === history.length) {
      tf.dispose(bestWeights);
      bestWeights = null;
    }
    return { history, bestEpoch, stoppedEarly, bestWeights };
  }

  /** One pass over the training split; the mean loss and accuracy (or MAE) of its batches. */
  private async epoch(epoch: number): Promise<{ loss: number; metric: number }> {
    const { data, batchSize, classes, batchX, batchY, order } = this;
    const width = data.width;
    shuffleInPlace(order, this.random);
    const batches = Math.ceil(data.n / batchSize);
    let lossSum = 0;
    let metricSum = 0;
    for (let b = 0; b < batches; b++) {
      throwIfAborted(this.opts.signal);
      const start = b * batchSize;
      const rows = Math.min(batchSize, data.n - start);
      if (this.labels) batchY.fill(0, 0, rows * classes);
      for (let k = 0; k < rows; k++) {
        const i = order[start + k];
        batchX.set(data.x.subarray(i * width, (i + 1) * width), k * width);
        if (this.labels) batchY[k * classes + data.y![i]] = 1;
        else batchY[k] = data.y![i];
      }
      const [cost, stat] = withSeededMathRandom(this.stepRandom, () => this.step(rows));
      const batchLoss = cost.dataSync()[0] * this.lossScale;
      metricSum += stat.dataSync()[0];
      tf.dispose([cost, stat]);
      lossSum += batchLoss * rows;
      this.opts.onBatch?.({ epoch, batch: b + 1, batches, loss: batchLoss });
      await yieldToEventLoop();
    }
    const metric = this.labels ? metricSum / data.n : (metricSum / data.n) * Math.sqrt(this.lossScale);
    return { loss: lossSum / data.n, metric };
  }

  /** One optimizer step; returns the batch loss and the batch's correct count (or sum of absolute errors). */
  private step(rows: number): [tf.Scalar, tf.Scalar] {
    const { model, classes } = this;
    return tf.tidy(() => {
      const xs =
        this.batchX instanceof Int32Array
          ? tf.tensor2d(this.batchX.subarray(0, rows * this.data.width), [rows, this.data.width], 'int32')
          : tf.tensor2d(this.batchX.subarray(0, rows * this.data.width), [rows, this.data.width]);
      const ys = tf.tensor2d(this.batchY.subarray(0, rows * classes), [rows, classes]);
      let stat: tf.Scalar | null = null;
      const cost = this.optimizer.minimize(
        () => {
          const predicted = model.apply(xs, { training: true }) as tf.Tensor2D;
          let loss: tf.Scalar;
          if (this.labels) {
            loss = tf.mean(tf.metrics.categoricalCrossentropy(ys, predicted));
            stat = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(predicted, 1), tf.argMax(ys, 1)), 'float32')) as tf.Scalar);
          } else {
            loss = tf.losses.meanSquaredError(ys, predicted) as tf.Scalar;
            stat = tf.keep(tf.sum(tf.abs(tf.sub(predicted, ys))) as tf.Scalar);
          }
          for (const penalty of model.calculateLosses()) loss = tf.add(loss, penalty);
          return loss;
        },
        true,
        this.variables,
      )!;
      return [cost, stat!];
    });
  }

  /** Loss and accuracy (or MAE) on the validation split, in inference mode. */
  private validate(): { loss: number; metric: number } {
    const validation = this.validation!;
    const outputs = forward(this.model, validation);
    if (this.labels) {
      const m = classificationMetrics(outputs, validation.y!, this.labels);
      return { loss: m.loss, metric: m.accuracy };
    }
    const m = regressionMetrics(outputs, validation.y!);
    return { loss: m.mse * this.lossScale, metric: m.mae * Math.sqrt(this.lossScale) };
  }
}
