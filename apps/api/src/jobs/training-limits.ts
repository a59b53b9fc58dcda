import { ApiError, type Quotas } from '@app/common';
import type { Dataset } from '@app/db';
import {
  checkTopology,
  isMlError,
  minimumTrainingTime,
  MIN_STEP_SECONDS,
  presetParameters,
  resolveHyperparameters,
  type ResolvedHyperparameters,
  type ResolveOptions,
  type Task,
} from '@app/ml';
import type { TenantPrincipal } from '../auth/principal.js';
import { mlErrorToApi } from '../http/ml-errors.js';

/**
 * What a training job must fit before it is queued, checked from the dataset's recorded columns
 * and row count without TF.js: its model against max_model_parameters (a custom topology or the
 * preset), and its least possible run time against max_job_seconds.
 */

/** A job refused here is refused only when even an optimistic estimate is this many times over max_job_seconds. */
export const JOB_SECONDS_MARGIN = 2;

interface Column {
  role: string;
  class_counts?: Record<string, number>;
}

function widths(task: Task, dataset: Dataset): { inputWidth: number; outputWidth: number } {
  const columns = dataset.columns as unknown as Column[];
  const label = columns.find((c) => c.role === 'label');
  return {
    inputWidth: columns.filter((c) => c.role === 'feature').length,
    outputWidth: task === 'regression' ? 1 : Object.keys(label?.class_counts ?? {}).length,
  };
}

export function checkArchitecture(p: TenantPrincipal, task: Task, dataset: Dataset, architecture: unknown): void {
  const { inputWidth, outputWidth } = widths(task, dataset);
  try {
    checkTopology(architecture, {
      task,
      inputWidth: task === 'text-classification' ? undefined : inputWidth,
      outputWidth,
      maxParameters: p.quotas.max_model_parameters,
    });
  } catch (err) {
    throw mlErrorToApi(err, p, 'architecture');
  }
}

/**
 * The preset's parameters, counted as the worker will build it. A text vocabulary is only known
 * once the worker tokenizes the rows, so it counts as its smallest: the count is a lower bound.
 */
export function checkPreset(quotas: Quotas, task: Task, dataset: Dataset, hp: ResolvedHyperparameters): void {
  const planned = presetParameters({ task, ...widths(task, dataset) }, hp);
  if (planned <= quotas.max_model_parameters) return;
  const layers = `hidden_units [${(hp.hidden_units ?? []).join(', ')}]${task === 'text-classification' && hp.embedding_dim !== undefined ? `, embedding_dim ${hp.embedding_dim}` : ''}`;
  throw new ApiError(
    403,
    'quota_exceeded_error',
    'max_model_parameters',
    `The preset model (${layers}) would have ${planned} parameters; this tenant's max_model_parameters is ${quotas.max_model_parameters}`,
    'hyperparameters',
  );
}

/** Refuses a training that cannot end within max_job_seconds: its fewest steps at an optimistic speed already take twice as long. */
export function checkTrainingTime(quotas: Quotas, dataset: Dataset, hp: ResolvedHyperparameters): void {
  const bound = minimumTrainingTime(dataset.rows, hp);
  if (bound.seconds <= JOB_SECONDS_MARGIN * quotas.max_job_seconds) return;
  const speed = Math.round(1 / MIN_STEP_SECONDS);
  throw new ApiError(
    403,
    'quota_exceeded_error',
    'max_job_seconds',
    `The training takes at least ${Math.ceil(bound.seconds)} s (${bound.epochs} epochs of ${bound.trainRows} rows in batches of ${hp.batch_size}: ` +
      `${bound.steps} steps at an optimistic ${speed} steps/s), over ${JOB_SECONDS_MARGIN}× this tenant's max_job_seconds of ${quotas.max_job_seconds}; ` +
      'lower epochs or raise batch_size',
    'hyperparameters',
  );
}

/** The job's hyperparameters resolved as the worker will (defaults filled in), or a 400 naming the problems. */
export function resolveTrainingHyperparameters(
  task: Task,
  given: Record<string, unknown>,
  options: ResolveOptions,
): ResolvedHyperparameters {
  try {
    return resolveHyperparameters(task, given, options);
  } catch (err) {
    if (isMlError(err)) throw ApiError.invalid('hyperparameters_invalid', err.message, 'hyperparameters');
    throw err;
  }
}
