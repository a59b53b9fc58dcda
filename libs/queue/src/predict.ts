import type { AppConfig } from '@app/config';
import { redisKey } from './redis.js';

/**
 * The sync inference path's contract (POST /v1/models/{id}/predict under `Prefer: wait`): the API
 * resolves the version, validates the inputs and pushes the request on this list; a worker's
 * InferenceLane batches it with others for the same version, writes the job rows in bulk, and
 * publishes the reply on the asking API instance's channel.
 *
 * Unlike the other queues the payload carries the inputs: the row is written only after the
 * prediction (in bulk, per batch), so that a request costs no PostgreSQL round trip before it.
 */
export const PREDICT_QUEUE = 'predict';

/** Attempts of a sync prediction: a crashed compute child gets one more try. */
export const PREDICT_MAX_ATTEMPTS = 2;

export interface PredictPayload {
  /** The job id (`job_…`). */
  jobId: string;
  /** 1 on the first try; set by the worker when it puts a request back for another. */
  attempt?: number;
  tenantId: string;
  modelId: string;
  /** The version chosen by the API (explicit, alias pick or latest): its id and number. */
  versionId: string;
  version: number;
  /** The alias asked for (`latest` by default), null when a version was named. */
  alias: string | null;
  inputs: Array<Record<string, string | number | null>>;
  explain: boolean;
  metadata: Record<string, unknown>;
  /** When the API accepted it: the job row's created_at. */
  createdAt: string;
  /** The API instance waiting for the answer (its reply channel). */
  replyTo: string;
}

interface ReplyBase {
  id: string;
  workerId: string;
  backend: string;
  attempts: number;
  startedAt: string;
  finishedAt: string;
}

export interface PredictSuccess extends ReplyBase {
  ok: true;
  version: number;
  /** Every prediction, each naming the version that answered. */
  predictions: Array<Record<string, unknown>>;
  explanations?: unknown[];
  /** This request's share of the batch's compute time. */
  computeSeconds: number;
  /** Size of the batch it was computed in (rows and requests), for metrics. */
  batchRows: number;
  batchRequests: number;
}

export interface PredictFailure extends ReplyBase {
  ok: false;
  /** `input_invalid`, `version_not_found`: the request's fault (4xx); `worker_crashed`, `internal_error`: ours (5xx). */
  error: { code: string; message: string };
}

export type PredictReply = PredictSuccess | PredictFailure;

/** The channel on which workers publish the replies (a JSON array) meant for one API instance. */
export function predictRepliesChannel(config: Pick<AppConfig, 'redisPrefix'>, instanceId: string): string {
  return redisKey(config, `i:${instanceId}`, 'predict-replies');
}

/** The codes of failures that are the request's fault (the API answers 4xx, the worker does not retry). */
export const PREDICT_REQUEST_ERRORS: Readonly<Record<string, number>> = { input_invalid: 400, version_not_found: 404 };

/**
 * An inference job's `result`: at most `pageSize` predictions inline; past that, `result.output`
 * says so and every page (0 included) is stored for `GET /v1/jobs/{id}/output`.
 */
export function inferenceResult(
  version: number,
  predictions: unknown[],
  explanations: unknown[] | undefined,
  pageSize: number,
): { result: Record<string, unknown>; pages?: Array<Record<string, unknown>> } {
  const page = (i: number) => ({
    predictions: predictions.slice(i * pageSize, (i + 1) * pageSize),
    ...(explanations ? { explanations: explanations.slice(i * pageSize, (i + 1) * pageSize) } : {}),
  });
  const pageCount = Math.max(1, Math.ceil(predictions.length / pageSize));
  const result: Record<string, unknown> = { version, ...page(0), total: predictions.length };
  if (pageCount === 1) return { result };
  result.output = { pages: pageCount, page_size: pageSize, truncated: true };
  return { result, pages: Array.from({ length: pageCount }, (_, i) => page(i)) };
}
