import { ApiError } from '@app/common';
import type { Dataset } from '@app/db';
import { type FoundationKind, foundationModel } from '@app/ml';
import type { z } from 'zod';
import type { TrainingJobBody } from './jobs.dto.js';
import { resolveTrainingHyperparameters } from './training-limits.js';

type Task = 'classification' | 'regression' | 'text-classification' | 'image-classification';

/** Which foundation models a task can stand on (regression: on a text dataset). */
const BASE_KINDS: Partial<Record<Task, FoundationKind>> = {
  'text-classification': 'text-embedding',
  regression: 'text-embedding',
  'image-classification': 'image-embedding',
};

/**
 * Bases whose top layers a job may unfreeze (`trainable_base_layers`), and how many at most: layers models in TF.js,
 * counted as libs/ml counts them (layers with weights; MobileNetV2 has 104).
 */
const TRAINABLE_BASES: Record<string, number> = { 'mobilenet-v2': 104 };

/** The base a regression model on a text dataset trains on when the job names none. */
export const DEFAULT_TEXT_BASE = 'universal-sentence-encoder-lite';

/**
 * Whether a training job is transfer learning: it names a base model, or it trains a regression
 * model on a text dataset (which only a head on a text encoder reads; the default base is taken).
 */
export function isTransferLearning(task: Task, dataset: Dataset, body: z.infer<typeof TrainingJobBody>): boolean {
  return body.base_model !== undefined || (task === 'regression' && dataset.textField !== null);
}

/**
 * A training job on a foundation model (transfer learning): the base named, fit for the task, and
 * the head's hyperparameters resolved as the worker will (a head: no preset keys). The base is
 * stored with the hyperparameters, where the worker finds it.
 */
export function transferHyperparameters(task: Task, dataset: Dataset, body: z.infer<typeof TrainingJobBody>): Record<string, unknown> {
  const id = body.base_model ?? DEFAULT_TEXT_BASE;
  const spec = foundationModel(id);
  if (!spec)
    throw ApiError.invalid('base_model_not_found', `No foundation model '${id}' (GET /v1/foundation-models lists them)`, 'base_model');
  const kind = BASE_KINDS[task];
  if (spec.kind !== kind) {
    throw ApiError.invalid(
      'base_model_kind_invalid',
      kind
        ? `A ${task} model trains on a ${kind} foundation model; '${id}' is ${spec.kind}`
        : `A ${task} model cannot be trained on a foundation model (transfer learning takes text-classification, image-classification and regression on text)`,
      'base_model',
    );
  }
  if (spec.input.type === 'text' && dataset.textField === null) {
    throw ApiError.invalid(
      'base_model_kind_invalid',
      `'${id}' reads text; dataset '${dataset.id}' has no text column (upload it with text_field naming the column that holds the text)`,
      'base_model',
    );
  }
  const implied =
    body.base_model === undefined ? ` (a regression model on the text dataset '${dataset.id}' trains on the foundation model '${id}')` : '';
  if (implied && body.base_version !== undefined)
    throw ApiError.invalid('parameter_invalid', `base_version cannot be given${implied}`, 'base_version');
  if (implied && body.architecture !== undefined)
    throw ApiError.invalid('parameter_invalid', `architecture cannot be given${implied}`, 'architecture');
  if (body.base_version !== undefined)
    throw ApiError.invalid('parameter_invalid', 'Give base_model or base_version, not both', 'base_version');
  if (body.architecture !== undefined)
    throw ApiError.invalid(
      'parameter_invalid',
      'A head on a foundation model has its own architecture; leave architecture out',
      'architecture',
    );
  const given = body.hyperparameters ?? {};
  const trainable = given.trainable_base_layers;
  if (trainable !== undefined) {
    const most = TRAINABLE_BASES[id];
    if (most === undefined)
      throw ApiError.invalid(
        'hyperparameters_invalid',
        `'${id}' stays frozen: its layers cannot be trained (trainable_base_layers)`,
        'hyperparameters',
      );
    if (!Number.isInteger(trainable) || (trainable as number) < 0 || (trainable as number) > most) {
      throw ApiError.invalid(
        'hyperparameters_invalid',
        `trainable_base_layers must be an integer from 0 to ${most} for '${id}' (got ${JSON.stringify(trainable)})`,
        'hyperparameters',
      );
    }
  }
  resolveTrainingHyperparameters(task, given, { preset: true, textData: false, baseModel: true });
  return { ...given, base_model: id };
}
