import * as tf from '@tensorflow/tfjs';
import { serializeModel } from './artifact/model-io.js';
import type { EncodedData } from './data/prepare.js';
import { MlError } from './errors.js';
import { evaluateEncoded } from './inference.js';
import { type LoopExtras, throwIfAborted, TrainingLoop } from './training-loop.js';
import type { ArtifactMetadata, BackendName, ResolvedHyperparameters, TrainOptions, TrainResult } from './types.js';

export interface FitRun {
  /** What the parameter limit names: "model" or "head". */
  what: 'model' | 'head';
  train: EncodedData;
  validation: EncodedData | null;
  metadata: ArtifactMetadata;
  hp: ResolvedHyperparameters;
  opts: TrainOptions;
  backend: BackendName;
  /** performance.now() when the training began. */
  started: number;
  makeOptimizer: () => tf.Optimizer;
  /** The loss's scale (a standardized regression target: its variance). */
  lossScale?: number;
  loop?: LoopExtras;
}

/**
 * The end of every training (a model from scratch, a fine-tuned version, a head on a base): the parameter limit,
 * the seeded loop, the best epoch's weights put back, the metrics on the validation split (else the training
 * rows), and the artifact with the result. Disposes the model, its optimizer and the kept weights.
 */
export async function fitAndPackage(model: tf.LayersModel, run: FitRun): Promise<TrainResult> {
  const { train, validation, metadata, hp, opts } = run;
  let optimizer: tf.Optimizer | null = null;
  let bestWeights: tf.Tensor[] | null = null;
  try {
    const parameters = model.countParams();
    if (opts.maxParameters !== undefined && parameters > opts.maxParameters) {
      throw new MlError('too_many_parameters', `The ${run.what} has ${parameters} parameters; the limit is ${opts.maxParameters}`);
    }
    optimizer = run.makeOptimizer();
    const loop = new TrainingLoop(model, optimizer, train, validation, metadata.labels, hp, opts, run.lossScale ?? 1, run.loop);
    const outcome = await loop.run();
    bestWeights = outcome.bestWeights;
    if (bestWeights) model.setWeights(bestWeights);
    throwIfAborted(opts.signal);
    const metrics = evaluateEncoded(model, metadata, validation ?? train);
    const { artifact, sha256, json } = await serializeModel(model, metadata);
    return {
      artifact,
      sha256,
      metrics,
      metrics_split: validation ? 'validation' : 'training',
      history: outcome.history,
      best_epoch: outcome.bestEpoch,
      stopped_early: outcome.stoppedEarly,
      parameters,
      architecture: json.modelTopology,
      hyperparameters: hp,
      input_schema: metadata.input_schema,
      labels: metadata.labels,
      backend: run.backend,
      train_samples: train.n,
      validation_samples: validation?.n ?? 0,
      duration_seconds: (performance.now() - run.started) / 1000,
    };
  } finally {
    if (bestWeights) tf.dispose(bestWeights);
    optimizer?.dispose();
    model.dispose();
  }
}
