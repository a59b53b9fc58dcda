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
import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { admissionBatchSubmissions } from '../health/metrics.js';

export interface AdmissionQueueOptions {
  /** How long a batch waits for more after its first submission when it could be written at once; 0: until the end of the event-loop turn. */
  windowMs: number;
  /** A batch closes at this many submissions. */
  maxBatch: number;
  /** …or at this many bytes of encoded submissions (one larger than this is a batch of its own). */
  maxBatchBytes: number;
  /** Batches written at once. */
  concurrency: number;
}

interface Pending {
  admission: EncodedAdmission;
  resolve: (a: Admitted) => void;
  reject: (err: unknown) => void;
}

/**
 * Groups submissions into batches, apart from the database (`write` writes one batch and answers
 * for each of its submissions, in order). The submissions that arrive while `concurrency` batches
 * are being written wait, and form the next batch as soon as one is done: under load, batches grow
 * with the load by themselves; a lone submission, with nothing being written, goes at the end of
 * the event-loop turn (or `windowMs` later). Batches keep the order of arrival.
 *
 * When a batch fails, every submission of it fails with the error if the database is unavailable
 * (or the batch was one submission): that is the answer each would have had alone. Any other error
 * may be one submission's fault (a value PostgreSQL refused): each is then written alone, so that
 * each gets its own answer, and one bad submission does not fail the others.
 */
export class AdmissionQueue {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private writing = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private idle: Array<() => void> = [];

  constructor(
    private readonly options: AdmissionQueueOptions,
    private readonly write: (batch: EncodedAdmission[]) => Promise<Admitted[]>,
    private readonly unavailable: (err: unknown) => boolean,
    private readonly onSplit: (err: unknown, size: number) => void = () => undefined,
  ) {}

  submit(admission: EncodedAdmission): Promise<Admitted> {
    return new Promise<Admitted>((resolve, reject) => {
      this.pending.push({ admission, resolve, reject });
      this.pendingBytes += admission.json.length;
      this.pump(false);
    });
  }

  /** Submissions not yet in a batch being written, and batches being written. */
  get waiting(): { pending: number; writing: number } {
    return { pending: this.pending.length, writing: this.writing };
  }

  /** Writes whatever waits now, and resolves once nothing is pending or being written (shutdown). */
  async drain(): Promise<void> {
    this.pump(true);
    if (this.pending.length === 0 && this.writing === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Starts the batches that may start: all that wait when `due` (they waited already), else only full ones. */
  private pump(due: boolean): void {
    while (this.writing < this.options.concurrency && this.pending.length > 0) {
      const full = this.pending.length >= this.options.maxBatch || this.pendingBytes >= this.options.maxBatchBytes;
      if (!due && !full) {
        this.arm();
        return;
      }
      this.disarm();
      void this.start(this.take());
    }
  }

  private arm(): void {
    if (this.timer !== null) return;
    const fire = () => {
      this.timer = null;
      this.pump(true);
    };
    this.timer = this.options.windowMs > 0 ? setTimeout(fire, this.options.windowMs) : setImmediate(fire);
  }

  private disarm(): void {
    if (this.timer === null) return;
    if (this.options.windowMs > 0) clearTimeout(this.timer as NodeJS.Timeout);
    else clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = null;
  }

  /** The oldest submissions, up to maxBatch and maxBatchBytes (at least one). */
  private take(): Pending[] {
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < this.options.maxBatch) {
      const size = this.pending[n].admission.json.length;
      if (n > 0 && bytes + size > this.options.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    this.pendingBytes -= bytes;
    return this.pending.splice(0, n);
  }

  private async start(batch: Pending[]): Promise<void> {
    this.writing++;
    try {
      await this.run(batch);
    } finally {
      this.writing--;
      this.pump(true);
      if (this.writing === 0 && this.pending.length === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    let answers: Admitted[];
    try {
      answers = await this.write(batch.map((p) => p.admission));
      if (answers.length !== batch.length) throw new Error(`a batch of ${batch.length} submissions got ${answers.length} answers`);
    } catch (err) {
      if (batch.length === 1 || this.unavailable(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      this.onSplit(err, batch.length);
      for (const p of batch) {
        try {
          const [answer] = await this.write([p.admission]);
          if (!answer) throw new Error('a submission written alone got no answer');
          p.resolve(answer);
        } catch (e) {
          p.reject(e);
        }
      }
      return;
    }
    batch.forEach((p, i) => {
      p.resolve(answers[i]);
    });
  }
}

/**
 * Job admission for `POST /v1/jobs`: the submissions that arrive together are admitted together,
 * in one statement and one commit (AdmissionRepository, `aiaas_admit_jobs`). An accepted job is
 * committed before `admit` returns.
 */
@Injectable()
export class AdmissionBatcher implements BeforeApplicationShutdown {
  private readonly logger = new Logger('admission');
  private readonly queue: AdmissionQueue;

  constructor(@Inject(APP_CONFIG) config: AppConfig, db: Database) {
    const repository = new AdmissionRepository(db);
    this.queue = new AdmissionQueue(
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
