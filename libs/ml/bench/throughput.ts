/**
 * Training throughput of the libs/ml presets against plain TF.js `model.fit` of the same model
 * on the same data in the same process, alternating rounds; and predict latency.
 *
 *   import { measureMlThroughput } from '<dist>/libs/ml/bench/throughput.js';
 *   const report = await measureMlThroughput({ backends: ['wasm'] });
 *
 * Run directly (after an SWC build) it prints the figures as JSON.
 */
import { sequenceTextArchitecture } from '../src/sequence-architecture.js';
import * as tf from '@tensorflow/tfjs';
import { pathToFileURL } from 'node:url';
import { initBackend } from '../src/backend.js';
import { HYPERPARAMETER_DEFAULTS } from '../src/hyperparameters.js';
import { LoadedModel } from '../src/predict.js';
import { prepareTraining } from '../src/data/prepare.js';
import { buildPreset } from '../src/presets.js';
import { seededRandom } from '../src/random.js';
import { blobRows } from '../src/synthetic.js';
import { train } from '../src/train.js';
import type { DatasetSpec, ResolvedHyperparameters, Row, TrainOptions } from '../src/types.js';

export type BenchBackend = 'cpu' | 'wasm';
export type BenchModel = 'mlp' | 'text';

/** Targets on `wasm` (samples/s) and for the libs/ml loop against plain fit (time ratio). */
export const TARGETS = { wasm: { mlp: 12_000, text: 1_500 }, max_ratio: 1.1 } as const;

export interface TrainingFigure {
  backend: BenchBackend;
  model: BenchModel;
  shape: string;
  samples: number;
  epochs: number;
  batch_size: number;
  rounds: number;
  /** Median over rounds of samples × epochs / time in the epoch loop of `train()`. */
  libs_ml_samples_per_second: number;
  /** The same through plain `model.fit` on prepared tensors. */
  plain_fit_samples_per_second: number;
  /** Median over rounds of libs/ml loop time ÷ plain fit time in the same round. */
  time_ratio: number;
  /** `train()` from rows to artifact (encoding, building, serializing included). */
  libs_ml_end_to_end_samples_per_second: number;
  target_samples_per_second: number | null;
  meets_target: boolean | null;
}

export interface PredictFigure {
  backend: BenchBackend;
  model: BenchModel;
  one_row_ms_p50: number;
  batch_256_rows_per_second: number;
}

export interface ThroughputReport {
  tfjs: string;
  training: TrainingFigure[];
  predict: PredictFigure[];
}

export interface ThroughputOptions {
  backends?: BenchBackend[];
  models?: BenchModel[];
  rounds?: number;
  /** Multiplies the default sample counts (smaller for a quick look). */
  scale?: number;
  log?: (line: string) => void;
}

const BATCH = 256;
const MLP = { features: 32, hidden: [128, 128], classes: 4 };
const TEXT = { vocabulary: 20_000, embedding: 64, sequence: 64, classes: 4 };

/** Batches per epoch and epochs, per backend and model: about 2–5 s a run here. */
const SIZES: Record<BenchBackend, Record<BenchModel, { batches: number; epochs: number }>> = {
  wasm: { mlp: { batches: 40, epochs: 2 }, text: { batches: 40, epochs: 2 } },
  cpu: { mlp: { batches: 12, epochs: 2 }, text: { batches: 4, epochs: 1 } },
};

interface Workload {
  model: BenchModel;
  rows: Row[];
  options: Omit<TrainOptions, 'rows'>;
  /** The same data as tensors-to-be, for plain fit. */
  x: Float32Array | Int32Array;
  y: Float32Array;
  width: number;
  hp: ResolvedHyperparameters;
}

export async function measureMlThroughput(options: ThroughputOptions = {}): Promise<ThroughputReport> {
  const log = options.log ?? (() => undefined);
  const rounds = options.rounds ?? 5;
  const report: ThroughputReport = { tfjs: tf.version.tfjs, training: [], predict: [] };
  for (const backend of options.backends ?? ['wasm', 'cpu']) {
    await initBackend(backend);
    for (const model of options.models ?? ['mlp', 'text']) {
      const size = SIZES[backend][model];
      const samples = Math.max(1, Math.round(size.batches * (options.scale ?? 1))) * BATCH;
      const work = model === 'mlp' ? mlpWorkload(samples, size.epochs) : textWorkload(samples, size.epochs);
      // Warm-up: first calls compile and allocate.
      await trainOnce(work, Math.min(samples, 4 * BATCH), 1);
      await fitOnce(work, Math.min(samples, 4 * BATCH), 1);
      const libs: number[] = [];
      const fits: number[] = [];
      const ends: number[] = [];
      let artifact: Buffer | null = null;
      const ratios: number[] = [];
      for (let round = 0; round < rounds; round++) {
        // Alternate which goes first, so that a drift in machine load favours neither.
        let fitSeconds = round % 2 === 0 ? await fitOnce(work, samples, size.epochs) : 0;
        const run = await trainOnce(work, samples, size.epochs);
        if (round % 2 === 1) fitSeconds = await fitOnce(work, samples, size.epochs);
        fits.push(fitSeconds);
        libs.push(run.loopSeconds);
        ends.push(run.totalSeconds);
        ratios.push(run.loopSeconds / fitSeconds);
        artifact = run.artifact;
        log(
          `${backend} ${model} round ${round + 1}: libs/ml ${rate(samples, size.epochs, run.loopSeconds)}/s, fit ${rate(samples, size.epochs, fitSeconds)}/s`,
        );
      }
      const target = backend === 'wasm' ? TARGETS.wasm[model] : null;
      const libsRate = rate(samples, size.epochs, median(libs));
      const figure: TrainingFigure = {
        backend,
        model,
        shape:
          model === 'mlp'
            ? `${MLP.features}→${MLP.hidden.join('→')}→${MLP.classes}`
            : `vocabulary ${TEXT.vocabulary}, embedding ${TEXT.embedding}, sequence ${TEXT.sequence} → ${TEXT.classes}`,
        samples,
        epochs: size.epochs,
        batch_size: BATCH,
        rounds,
        libs_ml_samples_per_second: libsRate,
        plain_fit_samples_per_second: rate(samples, size.epochs, median(fits)),
        time_ratio: round3(median(ratios)),
        libs_ml_end_to_end_samples_per_second: rate(samples, size.epochs, median(ends)),
        target_samples_per_second: target,
        meets_target: target === null ? null : libsRate >= target && median(ratios) <= TARGETS.max_ratio,
      };
      report.training.push(figure);
      report.predict.push(await measurePredict(backend, model, artifact!, work.rows));
    }
  }
  return report;
}

function mlpWorkload(samples: number, epochs: number): Workload {
  const rows = blobRows(samples, { features: MLP.features, classes: MLP.classes, seed: 1, spread: 2 });
  const hp = hyperparameters(epochs, { hidden_units: MLP.hidden });
  return workload('mlp', rows, { task: 'classification', label: 'label' }, hp, MLP.classes);
}

function textWorkload(samples: number, epochs: number): Workload {
  const random = seededRandom(2);
  // Random words from a lexicon larger than the vocabulary cap, so that the vocabulary fills up.
  const lexicon = Array.from({ length: 25_000 }, (_, i) => `w${i.toString(36)}`);
  const rows: Row[] = Array.from({ length: samples }, (_, i) => {
    const words = Array.from({ length: TEXT.sequence }, () => lexicon[Math.floor(random() * lexicon.length)]);
    words[Math.floor(random() * TEXT.sequence)] = `topic${i % TEXT.classes}`;
    return { text: words.join(' '), topic: `t${i % TEXT.classes}` };
  });
  const hp = hyperparameters(epochs, {
    hidden_units: [],
    embedding_dim: TEXT.embedding,
    max_vocabulary: TEXT.vocabulary,
    sequence_length: TEXT.sequence,
  });
  // The token-embedding model (what custom Embedding architectures train): the kernel-bound path this
  // bench watches. The default hashed-n-gram model is measured by libs/ml/bench/text-quality.ts.
  const architecture = sequenceTextArchitecture(TEXT.classes, TEXT.embedding, TEXT.vocabulary, TEXT.sequence);
  return workload('text', rows, { task: 'text-classification', label: 'topic', textField: 'text' }, hp, TEXT.classes, architecture);
}

/** Plain fit gets exactly the arrays that train() makes from the rows: libs/ml's own encoding. */
function workload(
  model: BenchModel,
  rows: Row[],
  spec: DatasetSpec,
  hp: ResolvedHyperparameters,
  classes: number,
  architecture?: unknown,
): Workload {
  const { train: data } = prepareTraining(spec, rows, {
    validationSplit: 0,
    random: seededRandom(hp.seed),
    maxVocabulary: hp.max_vocabulary,
    sequenceLength: hp.sequence_length,
    ...(architecture ? { textModel: 'sequence' as const } : {}),
  });
  const y = new Float32Array(data.n * classes);
  data.y!.forEach((c, i) => {
    y[i * classes + c] = 1;
  });
  return {
    model,
    rows,
    options: { spec, hyperparameters: { ...hp, early_stopping: null }, ...(architecture ? { architecture } : {}) },
    x: data.x as Float32Array | Int32Array,
    y,
    width: data.width,
    hp,
  };
}

function hyperparameters(epochs: number, extra: Partial<ResolvedHyperparameters>): ResolvedHyperparameters {
  return {
    epochs,
    batch_size: BATCH,
    learning_rate: 0.001,
    optimizer: 'adam',
    validation_split: 0,
    early_stopping: null,
    seed: 1,
    ...extra,
  };
}

async function trainOnce(
  work: Workload,
  samples: number,
  epochs: number,
): Promise<{ loopSeconds: number; totalSeconds: number; artifact: Buffer }> {
  const started = performance.now();
  const result = await train({
    ...work.options,
    rows: work.rows.slice(0, samples),
    hyperparameters: { ...work.options.hyperparameters, epochs },
  });
  const totalSeconds = (performance.now() - started) / 1000;
  return { loopSeconds: result.history.at(-1)!.elapsed_seconds, totalSeconds, artifact: result.artifact };
}

async function fitOnce(work: Workload, samples: number, epochs: number): Promise<number> {
  const classes = work.model === 'mlp' ? MLP.classes : TEXT.classes;
  const model = buildPreset(
    {
      task: work.model === 'mlp' ? 'classification' : 'text-classification',
      inputWidth: work.width,
      outputWidth: classes,
      vocabularySize: TEXT.vocabulary,
      textModel: 'sequence',
    },
    { ...work.hp, embedding_dim: work.hp.embedding_dim ?? HYPERPARAMETER_DEFAULTS.text.embedding_dim },
  );
  model.compile({ optimizer: tf.train.adam(work.hp.learning_rate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const x =
    work.x instanceof Int32Array
      ? tf.tensor2d(work.x.subarray(0, samples * work.width), [samples, work.width], 'int32')
      : tf.tensor2d(work.x.subarray(0, samples * work.width), [samples, work.width]);
  const y = tf.tensor2d(work.y.subarray(0, samples * classes), [samples, classes]);
  try {
    const started = performance.now();
    await model.fit(x, y, { epochs, batchSize: BATCH, shuffle: true, verbose: 0 });
    return (performance.now() - started) / 1000;
  } finally {
    tf.dispose([x, y]);
    model.optimizer.dispose();
    model.dispose();
  }
}

async function measurePredict(backend: BenchBackend, model: BenchModel, artifact: Buffer, rows: Row[]): Promise<PredictFigure> {
  const loaded = await LoadedModel.load(artifact);
  try {
    const inputs = rows.slice(0, BATCH).map((r) => {
      const { label: _l, topic: _t, ...features } = r;
      return features;
    });
    for (let i = 0; i < 20; i++) await loaded.predict([inputs[i % inputs.length]]);
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      await loaded.predict([inputs[i % inputs.length]]);
      times.push(performance.now() - started);
    }
    await loaded.predict(inputs);
    const calls = backend === 'cpu' ? 5 : 30;
    const started = performance.now();
    for (let i = 0; i < calls; i++) await loaded.predict(inputs);
    const seconds = (performance.now() - started) / 1000;
    return { backend, model, one_row_ms_p50: round3(median(times)), batch_256_rows_per_second: Math.round((calls * BATCH) / seconds) };
  } finally {
    loaded.dispose();
  }
}

function rate(samples: number, epochs: number, seconds: number): number {
  return Math.round((samples * epochs) / seconds);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

// `node throughput.js [backends, e.g. wasm,cpu] [rounds] [scale]`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [backends, rounds, scale] = process.argv.slice(2);
  const report = await measureMlThroughput({
    backends: backends ? (backends.split(',') as BenchBackend[]) : undefined,
    rounds: rounds ? Number(rounds) : undefined,
    scale: scale ? Number(scale) : undefined,
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(report, null, 2));
}
