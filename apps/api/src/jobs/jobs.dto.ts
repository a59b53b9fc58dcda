import { STATUSES } from '@app/common';
import { type Job, jobView as viewOfJob } from '@app/db';
import { z } from 'zod';
import { idParam, listQuery, Timestamp, VersionNumber } from '../http/schemas.js';
import { AliasName } from '../models/models.dto.js';

const ModelRef = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._-]+$/, 'must be a model id (mdl_...) or a model name');
const Metadata = z
  .record(z.string().max(40), z.union([z.string().max(500), z.number(), z.boolean(), z.null()]))
  .refine((m) => Object.keys(m).length <= 50, 'at most 50 keys')
  .describe('your own key/value pairs, returned with the job');
const Resources = z.object({ accelerator: z.enum(['gpu', 'cpu']).optional() }).strict();
const WebhookEvents = z.array(z.enum(['start', 'progress', 'completed'])).max(3);
const common = {
  metadata: Metadata.optional(),
  resources: Resources.optional(),
  webhook_url: z.string().url().max(2000).optional().describe('checked at submission as a webhook endpoint URL is (400 url_not_allowed)'),
  webhook_events: WebhookEvents.optional().describe('default ["completed"]'),
};
const VersionChoice = {
  version: VersionNumber.optional(),
  alias: z.union([AliasName, z.literal('latest')]).optional(),
};
export const InputRow = z.record(z.string(), z.union([z.string(), z.number(), z.null()]));

export const TrainingJobBody = z
  .object({
    type: z.literal('training'),
    model: ModelRef,
    dataset: idParam('ds'),
    hyperparameters: z.record(z.string(), z.unknown()).optional(),
    architecture: z.record(z.string(), z.unknown()).optional().describe('a TF.js layers topology; default: a preset for the task'),
    base_version: VersionNumber.optional().describe('fine-tune from this version of the model'),
    base_model: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe(
        'transfer learning: train a head on this foundation model’s frozen features (GET /v1/foundation-models); the base stays frozen',
      ),
    ...common,
  })
  .strict();

export const EvaluationJobBody = z
  .object({ type: z.literal('evaluation'), model: ModelRef, dataset: idParam('ds'), ...VersionChoice, ...common })
  .strict();

const Explain = z
  .boolean()
  .optional()
  .describe(
    'also return `explanations`, one per input (gradient × input): tabular `{feature: score}`; text `[{token, score}]`; images `{saliency: {width, height, values}}`, a coarse grid over the image (values row-major, absolute, the largest 1)',
  );

const Output = z
  .object({
    format: z.enum(['ndjson', 'csv']).describe('ndjson: one {row, prediction, inputs?} object a line; csv: RFC 4180 with a header'),
    include_inputs: z.boolean().optional().describe("echo each row's columns beside its prediction (default false)"),
  })
  .strict()
  .describe('batch prediction over `dataset`: every row scored into an output file (GET /v1/files/{result.output_file_id}/content)');

export const InferenceJobBody = z
  .object({
    type: z.literal('inference'),
    model: ModelRef,
    inputs: z.array(InputRow).min(1).max(10_000).optional(),
    dataset: idParam('ds').optional(),
    explain: Explain,
    output: Output.optional(),
    ...VersionChoice,
    ...common,
  })
  .strict();

export const CreateJobBody = z.discriminatedUnion('type', [TrainingJobBody, EvaluationJobBody, InferenceJobBody]);
export type CreateJob = z.infer<typeof CreateJobBody>;

export const PredictBody = z
  .object({ inputs: z.array(InputRow).min(1).max(10_000), ...VersionChoice, explain: Explain, metadata: Metadata.optional() })
  .strict();

export const JobListQuery = listQuery({
  type: z.enum(['training', 'evaluation', 'inference']).optional(),
  status: z.enum(STATUSES).optional(),
  model: ModelRef.optional(),
});

export const EventListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(100),
    starting_after: z.string().min(1).max(100).optional(),
  })
  .strict();

export const JobSchema = z
  .object({
    id: z.string(),
    object: z.literal('job'),
    type: z.enum(['training', 'evaluation', 'inference']),
    status: z.enum(STATUSES),
    model_id: z.string(),
    version: z.number().nullable(),
    alias: z.string().nullable(),
    dataset_id: z.string().nullable(),
    hyperparameters: z.record(z.string(), z.unknown()),
    base_model: z.string().nullable().describe('the foundation model a transfer-learning job trains on'),
    metadata: z.record(z.string(), z.unknown()),
    resources: z.object({ accelerator: z.string().nullable() }),
    progress: z.object({
      percent: z.number(),
      epoch: z.number().nullable(),
      epochs: z.number().nullable(),
      eta_seconds: z.number().nullable(),
      rows_done: z.number().optional().describe('batch prediction (output): rows scored and committed to the file'),
      rows_total: z.number().optional(),
    }),
    output: z
      .object({ format: z.enum(['ndjson', 'csv']), include_inputs: z.boolean() })
      .nullable()
      .describe('batch prediction: the file the rows go to (result.output_file_id)'),
    queue_position: z.number().nullable(),
    waiting_for: z.enum(['capacity', 'tenant_concurrency_limit', 'gpu']).nullable(),
    attempts: z.number(),
    cancel_requested: z.boolean(),
    worker_id: z.string().nullable(),
    backend: z.string().nullable(),
    compute_seconds: z.number(),
    result: z.record(z.string(), z.unknown()).nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    webhook_url: z.string().nullable(),
    webhook_events: z.array(z.string()),
    created_at: Timestamp,
    started_at: Timestamp.nullable(),
    finished_at: Timestamp.nullable(),
  })
  .meta({ id: 'Job' });

export const JobEventSchema = z
  .object({
    id: z.string(),
    object: z.literal('job_event'),
    job_id: z.string(),
    type: z.string(),
    data: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
  })
  .meta({ id: 'JobEvent' });

export type JobView = z.infer<typeof JobSchema>;

/** The job as API.md shows it (libs/db's jobView, which webhook payloads use too), typed by its schema. */
export function jobView(
  j: Job,
  queue: { position: number | null; waitingFor: JobView['waiting_for'] } = { position: null, waitingFor: null },
): JobView {
  return viewOfJob(j, queue);
}

/** `Prefer: wait` or `Prefer: wait=N` (seconds, at most 60): how long to wait, or null. */
export function preferWait(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  const m = /(?:^|[,;\s])wait(?:=(\d+))?(?=$|[,;\s])/i.exec(value);
  if (!m) return null;
  return Math.min(60, m[1] === undefined ? 60 : Number(m[1]));
}

export const OutputQuery = z.object({ page: z.coerce.number().int().min(0).max(1_000_000).default(0) }).strict();

export const JobOutputSchema = z
  .object({
    object: z.literal('job_output'),
    job_id: z.string(),
    page: z.number(),
    pages: z.number(),
    has_more: z.boolean(),
    predictions: z.array(z.unknown()),
    explanations: z.array(z.unknown()).optional(),
  })
  .meta({ id: 'JobOutput' });
