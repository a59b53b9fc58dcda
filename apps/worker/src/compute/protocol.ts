import type { BackendInfo, DatasetSpec, EpochProgress, Hyperparameters, Metrics, PredictResult, Row, Scores, TrainResult } from '@app/ml';

/** What the worker asks its compute child to do. Everything crosses the IPC channel by structured clone. */
export interface ComputeOps {
  train: {
    args: {
      spec: DatasetSpec;
      rows: Row[];
      hyperparameters?: Hyperparameters;
      architecture?: unknown;
      base?: Uint8Array;
      /** Transfer learning: the frozen base and its features of every row. */
      baseModel?: { id: string; sha256: string; features: Float32Array[] };
      maxParameters?: number;
    };
    result: Omit<TrainResult, 'history'>;
  };
  /** `baseFeatures`: a head's base features of every row, from the feature cache (in row order). */
  evaluate: { args: { artifact: Uint8Array; rows: Row[]; baseFeatures?: Float32Array[] }; result: Metrics };
  predict: { args: { artifact: Uint8Array; inputs: Row[]; explain?: boolean }; result: PredictResult };
  /**
   * Predicts with a version the child may hold loaded (its model cache, keyed by version id). Without
   * `artifact` a child that does not hold the version answers `miss`; the parent reads the artifact
   * and asks again with it. `seconds` is the child's compute time (loading included).
   */
  infer: {
    args: { versionId: string; inputs: Row[]; explain?: boolean; artifact?: Uint8Array; baseFeatures?: Float32Array[] };
    result: { miss: true } | (PredictResult & { miss: false; seconds: number });
  };
  /**
   * A batch prediction's chunk: dataset rows as their stored NDJSON lines (a string crosses the
   * process boundary as one copy; the child parses it), scored with a version as `infer` loads it,
   * answered as typed arrays (libs/ml Scores) rather than an object per row.
   */
  score: {
    args: { versionId: string; lines: string; artifact?: Uint8Array };
    result: { miss: true } | (Scores & { miss: false; seconds: number });
  };
  /** Loads an imported artifact as `infer` would and predicts once on zeros; not cached. Refusals are MlError. */
  check: { args: { artifact: Uint8Array }; result: { seconds: number } };
  /** A foundation model's features of raw inputs for a head (libs/ml baseFeatures), one per input, in order. */
  features: { args: { model: string; inputs: string[] | Uint8Array[] }; result: { features: Float32Array[] } };
  /**
   * A foundation model on raw inputs (texts, or encoded images), loaded once per child and kept
   * in its model cache. Bad input i is an InputError naming i.
   */
  foundation: {
    args: { model: string; op: 'embed' | 'classify'; inputs: string[] | Uint8Array[] };
    result: { vectors?: Float32Array[]; tokens?: number[]; truncated?: boolean[]; probabilities?: number[][]; seconds: number };
  };
}
export type ComputeOp = keyof ComputeOps;

export type ToChild = { type: 'run'; id: number; op: ComputeOp; args: unknown } | { type: 'abort'; id: number };

export interface SerializedError {
  name: string;
  message: string;
  /** MlError's code, when it is one */
  code?: string;
  /** InputError's input index, when it is one */
  index?: number;
  details?: string[];
}

export type FromChild =
  | { type: 'ready'; backend: BackendInfo }
  | { type: 'init_error'; error: SerializedError }
  | { type: 'epoch'; id: number; progress: EpochProgress }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'error'; id: number; error: SerializedError };
