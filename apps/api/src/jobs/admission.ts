import { ApiError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  type AdmissionLimits,
  AdmissionRepository,
  type Admitted,
  Database,
  type EncodedAdmission,
  encodeAdmission,
  isDatabaseUnavailable,
  type Job,
  type NewJob,
} from '@app/db';
import { BatchQueue } from './batch-queue.js';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { admissionBatchSubmissions } from '../health/metrics.js';

/**
 * Job admission for `POST /v1/jobs`: the submissions that arrive together are admitted together,
 * in one statement and one commit (AdmissionRepository, `aiaas_admit_jobs`). An accepted job is
 * committed before `admit` returns.
 */
@Injectable()
export class AdmissionBatcher implements BeforeApplicationShutdown {
  private readonly logger = new Logger('admission');
  private readonly queue: BatchQueue<EncodedAdmission, Admitted>;

  constructor(@Inject(APP_CONFIG) config: AppConfig, db: Database) {
    const repository = new AdmissionRepository(db);
    this.queue = new BatchQueue(
      {
        windowMs: config.admissionWindowMs,
        maxBatch: config.admissionMaxBatch,
        maxBatchBytes: config.admissionMaxBatchBytes,
        concurrency: config.admissionConcurrency,
      },
      (batch) => {
        admissionBatchSubmissions.observe(batch.length);
        return repository.admit(batch);
      },
      isDatabaseUnavailable,
      (err, size) =>
        this.logger.warn(
          { err: (err as Error)?.message?.slice(0, 300), size },
          'an admission batch failed; admitting its submissions one by one',
        ),
    );
  }

  /** Admits one job, or says which quota refused it (`count`: the queued jobs, or the compute seconds used). */
  async admit(
    tenantId: string,
    data: NewJob,
    limits: AdmissionLimits,
  ): Promise<
    { job: Job; running: number; refused?: never } | { refused: 'max_queued_jobs' | 'monthly_compute_seconds'; count: number; job?: never }
  > {
    const admitted = await this.queue.submit(encodeAdmission(tenantId, data, limits));
    // Deleted (with its keys) since the request was authenticated: what the next request will hear.
    if (admitted.refused === 'tenant_missing') throw ApiError.unauthenticated('api_key_invalid', 'Invalid API key');
    return admitted.refused ? { refused: admitted.refused, count: admitted.count } : { job: admitted.job, running: admitted.running };
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.queue.drain();
  }
}
