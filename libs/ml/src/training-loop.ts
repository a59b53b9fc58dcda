import * as tf from '@tensorflow/tfjs';
import type { EncodedData } from './data/prepare.js';
import { MlError } from './errors.js';
import { forward } from './inference.js';
import { classificationMetrics, regressionMetrics } from './metrics.js';
import { seededRandom, shuffleInPlace, withSeededMathRandom } from './random.js';
import type { EpochProgress, ResolvedHyperparameters, TrainOptions } from './types.js';

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MlError('canceled', 'Training was canceled');
}

// setImmediate, not a microtask: an abort from a timer or an IPC message gets its turn.
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** SGD caches its rate as a tensor (`setLearningRate`); Adam, RMSProp and Adagrad read the field at each step. */
function setLearningRate(optimizer: tf.Optimizer, rate: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (rate: number) => void };
  if (o.setLearningRate) o.setLearningRate(rate);
  else o.learningRate = rate;
}

export interface LoopExtras {
  /** Changes the rows of a batch in place (image augmentation), with the loop's seeded randomness. */
  augment?: (batch: Float32Array, rows: number, random: () => number) => void;
  /** Runs the model in inference mode while training (batch normalization on its moving statistics: fine-tuning). */
  inferenceMode?: boolean;
  /** The learning rate's factor for each (1-based) epoch, set on the optimizer before the epoch (default 1 throughout). */
  learningRateFactor?: (epoch: number, epochs: number) => number;
}

export interface LoopOutcome {
  history: EpochProgress[];
  bestEpoch: number;
  stoppedEarly: boolean;
  bestWeights: tf.Tensor[] | null;
}

export class TrainingLoop {
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
  private readonly augmentRandom: () => number;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly optimizer: tf.Optimizer,
    private readonly data: EncodedData,
    private readonly validation: EncodedData | null,
    private readonly labels: string[] | null,
    private readonly hp: ResolvedHyperparameters,
    private readonly opts: TrainOptions,
    lossScale: number,
    private readonly extras: LoopExtras = {},
  ) {
    this.classes = labels ? labels.length : 1;
    this.batchSize = Math.min(hp.batch_size, data.n);
    this.batchX =
      data.x instanceof Int32Array ? new Int32Array(this.batchSize * data.width) : new Float32Array(this.batchSize * data.width);
    this.batchY = new Float32Array(this.batchSize * this.classes);
    this.variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.lossScale = lossScale;
    this.order = Int32Array.from({ length: data.n }, (_, i) => i);
    // Batch order and training-time randomness (dropout) draw from their own streams of the seed.
    this.random = seededRandom((hp.seed ^ 0x27d4eb2f) >>> 0);
    this.stepRandom = seededRandom((hp.seed ^ 0x165667b1) >>> 0);
    this.augmentRandom = seededRandom((hp.seed ^ 0x9e3779b9) >>> 0);
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
        if (this.extras.learningRateFactor)
          setLearningRate(this.optimizer, hp.learning_rate * this.extras.learningRateFactor(epoch, hp.epochs));
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
      if (data.sparse) batchX.fill(0, 0, rows * width);
      for (let k = 0; k < rows; k++) {
        const i = order[start + k];
        if (data.sparse) {
          const { offsets, indices, values } = data.sparse;
          for (let p = offsets[i]; p < offsets[i + 1]; p++) batchX[k * width + indices[p]] = values[p];
        } else if (data.x instanceof Uint8Array) {
          const scale = data.scale ?? 1;
          for (let j = 0, from = i * width, to = k * width; j < width; j++) batchX[to + j] = data.x[from + j] * scale;
        } else batchX.set(data.x.subarray(i * width, (i + 1) * width), k * width);
        if (this.labels) batchY[k * classes + data.y![i]] = 1;
        else batchY[k] = data.y![i];
      }
      if (this.extras.augment) this.extras.augment(batchX as Float32Array, rows, this.augmentRandom);
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
          const predicted = model.apply(xs, { training: !this.extras.inferenceMode }) as tf.Tensor2D;
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
