import { ApiError, newId } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, type Job, SyncPredictionRepository } from '@app/db';
import {
  inferenceResult,
  PREDICT_MAX_ATTEMPTS,
  PREDICT_REQUEST_ERRORS,
  type PredictFailure,
  type PredictPayload,
  type PredictSuccess,
} from '@app/queue';
import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import type { TenantPrincipal } from '../auth/principal.js';
import { syncPredictionBatchRequests, syncPredictionBatchRows, syncPredictionDuration, syncPredictions } from '../health/metrics.js';
import { Answer } from '../http/idempotency.interceptor.js';
import { UsageCache } from '../me/usage-cache.js';
import { checkInputs } from './inputs.js';
import { jobView, type PredictBody } from './jobs.dto.js';
import { JobsService } from './jobs.service.js';
import { PredictTransport } from './predict-transport.js';
import { ServingCatalog } from './serving-catalog.js';

/**
 * Sync predictions (`POST /v1/models/{id}/predict` under `Prefer: wait`) on the fast path: the
 * version comes from ServingCatalog (cached), the inputs are checked against its schema, and the
 * request goes to the `predict` list with no database write before it; a worker batches it with
 * others, records the job row and replies over pub/sub. The answer is the job as the worker
 * recorded it, with the predictions inline. If no reply comes in time (no worker, overload) the
 * job row is written here as a queued inference job and the answer is 202: the worker (or, should
 * the queue have lost it, the job engine through the reconciler) finishes it later.
 */
@Injectable()
export class PredictService {
  private readonly records: SyncPredictionRepository;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    db: Database,
    private readonly catalog: ServingCatalog,
    private readonly transport: PredictTransport,
    private readonly usage: UsageCache,
    private readonly jobs: JobsService,
  ) {
    this.records = new SyncPredictionRepository(db);
  }

  async predict(p: TenantPrincipal, ref: string, body: z.infer<typeof PredictBody>, waitSeconds: number): Promise<Answer> {
    const t0 = performance.now();
    const target = await this.catalog.resolve(p.tenantId, ref, body.version, body.alias);
    checkInputs(target.version.inputSchema, body.inputs);
    // Compute is metered after the fact; the month's total comes from the cached usage snapshot.
    const usage = await this.usage.get(p.tenantId);
    if (usage.computeSecondsThisMonth >= p.quotas.monthly_compute_seconds) {
      throw new ApiError(
        403,
        'quota_exceeded_error',
        'monthly_compute_seconds',
        `The tenant has used its ${p.quotas.monthly_compute_seconds} compute seconds this month`,
      );
    }
    const payload: PredictPayload = {
      jobId: newId('job'),
      tenantId: p.tenantId,
      modelId: target.model.id,
      versionId: target.version.id,
      version: target.version.number,
      alias: target.alias,
      inputs: body.inputs,
      explain: body.explain ?? false,
      metadata: body.metadata ?? {},
      createdAt: new Date().toISOString(),
      replyTo: this.transport.instanceId,
    };
    const reply = await this.transport.call(payload, waitSeconds * 1000);
    // No reply in time, or the message was missed but the row says it ended: the row answers.
    if (reply === 'timeout' || reply === 'unqueued' || 'recorded' in reply) return this.accepted(payload);
    if (!reply.ok) {
      syncPredictions.labels('failed').inc();
      throw failureToApi(reply.error);
    }
    syncPredictions.labels('succeeded').inc();
    syncPredictionDuration.observe((performance.now() - t0) / 1000);
    syncPredictionBatchRows.observe(reply.batchRows);
    syncPredictionBatchRequests.observe(reply.batchRequests);
    return this.answer(this.succeededJob(payload, reply), reply.predictions, reply.explanations);
  }

  /** No reply: the job row, as a queued inference job the client can poll, or as it ended (a failure as its error). */
  private async accepted(payload: PredictPayload): Promise<Answer> {
    const job = await this.records.recordQueued({ ...payload, id: payload.jobId, maxAttempts: PREDICT_MAX_ATTEMPTS });
    if (!job) throw ApiError.notFound('model', payload.modelId);
    if (job.status === 'succeeded') {
      syncPredictions.labels('succeeded').inc();
      const result = (job.result ?? {}) as { predictions?: Array<Record<string, unknown>>; explanations?: unknown[] };
      return this.answer(job, result.predictions ?? [], result.explanations);
    }
    if (job.status === 'failed') {
      syncPredictions.labels('failed').inc();
      const error = (job.error ?? { code: 'internal_error', message: 'The prediction failed' }) as { code: string; message: string };
      throw failureToApi(error);
    }
    syncPredictions.labels('accepted').inc();
    await this.usage.changed(payload.tenantId);
    return new Answer(202, await this.jobs.view(job), { Location: `/v1/jobs/${job.id}` });
  }

  private answer(job: Job, predictions: Array<Record<string, unknown>>, explanations: unknown[] | undefined): Answer {
    return new Answer(200, { ...jobView(job), predictions, ...(explanations ? { explanations } : {}) }, { Location: `/v1/jobs/${job.id}` });
  }

  /** The job exactly as the worker recorded it (libs/db SyncPredictionRepository), built from the reply. */
  private succeededJob(payload: PredictPayload, reply: PredictSuccess): Job {
    const { result } = inferenceResult(reply.version, reply.predictions, reply.explanations, this.config.jobOutputPageSize);
    return {
      id: payload.jobId,
      tenantId: payload.tenantId,
      type: 'inference',
      status: 'succeeded',
      modelId: payload.modelId,
      version: reply.version,
      alias: payload.alias,
      datasetId: null,
      hyperparameters: {},
      architecture: null,
      baseVersion: null,
      accelerator: null,
      metadata: payload.metadata as Job['metadata'],
      inputs: null,
      explain: payload.explain,
      output: null,
      webhookUrl: null,
      webhookEvents: [],
      progress: { percent: 100 },
      attempts: reply.attempts,
      maxAttempts: PREDICT_MAX_ATTEMPTS,
      workerId: reply.workerId,
      backend: reply.backend,
      computeSeconds: reply.computeSeconds,
      result: result as Job['result'],
      error: null,
      cancelRequested: false,
      // A sync prediction that answered in time has no event history.
      eventSeq: 0,
      createdAt: new Date(payload.createdAt),
      startedAt: new Date(reply.startedAt),
      finishedAt: new Date(reply.finishedAt),
      updatedAt: new Date(reply.finishedAt),
    };
  }
}

/** A worker's refusal as the API's error: the request's fault is a 4xx naming what was wrong, ours a 5xx. */
function failureToApi({ code, message }: PredictFailure['error']): ApiError {
  const status = PREDICT_REQUEST_ERRORS[code];
  if (status === 400) return ApiError.invalid(code, message, 'inputs');
  if (status === 404) return new ApiError(404, 'invalid_request_error', 'resource_missing', message, 'version');
  if (code === 'worker_crashed') return ApiError.unavailable(code, message);
  return new ApiError(500, 'api_error', code, message);
}
