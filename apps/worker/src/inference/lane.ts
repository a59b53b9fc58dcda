import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, type SyncPredictionRecord, SyncPredictionRepository, UsageRepository } from '@app/db';
import { isMlError } from '@app/ml';
import {
  createRedis,
  inferenceResult,
  invalidationChannel,
  jobEventsChannel,
  PREDICT_MAX_ATTEMPTS,
  PREDICT_QUEUE,
  type PredictPayload,
  PredictQueue,
  type PredictReply,
  predictRepliesChannel,
  type RedisClient,
  publishSharded,
} from '@app/queue';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ChildCrashed } from '../compute/pool.js';
import { JobInputError } from '../jobs/job-reader.js';
import { Batcher } from './batcher.js';
import { type InferenceOutput, InferencePool } from './inference-pool.js';
import { UsageTally } from './usage-tally.js';

const USAGE_FLUSH_MS = 5_000;
/** A request whose batch hit a transient failure is put back for its next attempt after this. */
const RETRY_DELAY_MS = 100;
/** How long one BLMPOP waits for a first request (the loop then checks whether it should stop). */
const TAKE_TIMEOUT_S = 1;

/** One sync prediction in a batch, with its attempt. */
interface LaneRequest {
  payload: PredictPayload;
  attempt: number;
  /** No attempt after this one: a transient failure is answered rather than retried. */
  final: boolean;
}

/** A request's fate: a reply (success or a failure to tell), or an error to retry on. */
type LaneOutcome = { reply: PredictReply; retry?: never } | { retry: Error; reply?: never };

interface Failure {
  /** The request's fault or a broken model: retrying cannot help. */
  permanent: boolean;
  code: string;
  message: string;
}

type Computed = { ok: true; out: InferenceOutput; seconds: number } | { ok: false; failure: Failure };

/**
 * The worker's side of sync inference: a consumer of the `predict` list (libs/queue PredictQueue)
 * that holds up to PREDICT_CONCURRENCY requests at once, taking as many as it has room for in one
 * BLMPOP, and feeds them to a dynamic batcher keyed by version (and `explain`). Each batch is one
 * predict call in an inference child (its rows concatenated, the outputs split back per request),
 * then one multi-row write of the requests' job rows, then one publish per asking API instance.
 * Usage (compute seconds, request counts) is added up in memory and written every few seconds.
 */
@Injectable()
export class InferenceLane implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('predict');
  private readonly batcher: Batcher<LaneRequest, LaneOutcome>;
  private readonly records: SyncPredictionRepository;
  private readonly usage: UsageRepository;
  private readonly tally = new UsageTally();
  private redis: RedisClient | null = null;
  private blocking: RedisClient | null = null;
  private queue: PredictQueue | null = null;
  /** Requests taken and not yet answered. */
  private held = 0;
  private roomFreed: (() => void) | null = null;
  private flushTimer: NodeJS.Timeout | undefined;
  private consuming: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    db: Database,
    private readonly inference: InferencePool,
  ) {
    this.records = new SyncPredictionRepository(db);
    this.usage = new UsageRepository(db);
    this.batcher = new Batcher<LaneRequest, LaneOutcome>(
      { maxRows: config.predictBatchMaxRows, maxDelayMs: config.predictBatchDelayMs },
      (r) => r.payload.inputs.length,
      (_key, items) => this.runBatch(items),
    );
  }

  onApplicationBootstrap(): void {
    this.redis = createRedis(this.config, 'command', 'worker-predict');
    this.queue = new PredictQueue(this.config, this.redis);
    this.flushTimer = setInterval(() => void this.flushUsage(false), USAGE_FLUSH_MS);
    // Requests stay in the queue, for workers that can serve them, until this one's inference children are up.
    this.consuming = this.inference.ready().then(
      () => (this.stopping ? undefined : this.consume()),
      () => this.log.error(`not consuming ${PREDICT_QUEUE}: the inference children did not start`),
    );
  }

  /** Takes requests while there is room, until the worker stops. */
  private async consume(): Promise<void> {
    this.blocking = createRedis(this.config, 'blocking', 'worker-predict');
    while (!this.stopping) {
      const room = this.config.predictConcurrency - this.held;
      if (room <= 0) {
        await new Promise<void>((r) => (this.roomFreed = r));
        continue;
      }
      let taken: PredictPayload[];
      try {
        taken = await this.queue!.take(this.blocking, room, TAKE_TIMEOUT_S);
      } catch (err) {
        if (!this.stopping) this.log.warn(`taking from ${PREDICT_QUEUE}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const payload of taken) void this.process(payload);
    }
  }

  /** Stops fetching, lets the requests in hand finish (open batches close at once), then writes the usage left. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.roomFreed?.();
    await this.consuming;
    this.batcher.flush();
    while (this.held > 0) await new Promise((r) => setTimeout(r, 10));
    this.blocking?.disconnect();
    clearInterval(this.flushTimer);
    await this.flushUsage(true);
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }

  /** One request through the batcher; a transient failure puts it back for its next attempt. */
  private async process(p: PredictPayload): Promise<void> {
    this.held++;
    try {
      const attempt = p.attempt ?? 1;
      const outcome = await this.batcher.submit(`${p.versionId}|${p.explain ? 'explain' : ''}`, {
        payload: p,
        attempt,
        final: attempt >= PREDICT_MAX_ATTEMPTS,
      });
      if (outcome.retry) {
        await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
        await this.queue!.retry({ ...p, attempt: attempt + 1 }).catch((err: Error) => this.log.warn(`retrying ${p.jobId}: ${err.message}`));
      }
    } catch (err) {
      this.log.warn(`sync prediction ${p.jobId}: ${(err as Error).message}`);
    } finally {
      this.held--;
      this.roomFreed?.();
      this.roomFreed = null;
    }
  }

  /** One batch: compute, write every finished request's row in one statement, publish the replies, count the usage. */
  private async runBatch(items: LaneRequest[]): Promise<LaneOutcome[]> {
    const startedAt = new Date().toISOString();
    const computed = await this.compute(items);
    const finishedAt = new Date().toISOString();
    const rows = items.reduce((n, r) => n + r.payload.inputs.length, 0);
    const base = { workerId: this.config.instanceId, backend: this.inference.backend?.name ?? 'unknown', startedAt, finishedAt };

    const outcomes: LaneOutcome[] = [];
    const records: SyncPredictionRecord[] = [];
    items.forEach((item, i) => {
      const p = item.payload;
      const c = computed[i];
      const meta = { ...base, id: p.jobId, attempts: item.attempt };
      if (c.ok) {
        const predictions = c.out.predictions.map((x) => ({ ...x, version: p.version }));
        const { result, pages } = inferenceResult(p.version, predictions, c.out.explanations, this.config.jobOutputPageSize);
        records.push(this.record(item, meta, { status: 'succeeded', result, error: null, computeSeconds: c.seconds, pages }));
        outcomes.push({
          reply: {
            ...meta,
            ok: true,
            version: p.version,
            predictions,
            ...(c.out.explanations ? { explanations: c.out.explanations } : {}),
            computeSeconds: c.seconds,
            batchRows: rows,
            batchRequests: items.length,
          },
        });
      } else if (c.failure.permanent || item.final) {
        const error = { code: c.failure.code, message: c.failure.message };
        records.push(this.record(item, meta, { status: 'failed', result: null, error, computeSeconds: 0 }));
        outcomes.push({ reply: { ...meta, ok: false, error } });
      } else {
        outcomes.push({ retry: new Error(`${c.failure.code}: ${c.failure.message}`) });
      }
    });

    let answered = outcomes;
    try {
      const events = await this.records.record(records);
      this.publishEvents(events, items);
    } catch (err) {
      // Without its row a request is not answered as done: it is retried, or fails on its last attempt.
      this.log.warn(`recording ${records.length} sync predictions: ${(err as Error).message}`);
      const error = { code: 'internal_error', message: 'The prediction could not be recorded; try again' };
      answered = items.map((item, i): LaneOutcome => {
        const o = outcomes[i];
        if (o.retry) return o;
        if (!item.final) return { retry: err instanceof Error ? err : new Error(String(err)) };
        return { reply: { ...base, id: item.payload.jobId, attempts: item.attempt, ok: false, error } };
      });
    }

    this.publishReplies(items, answered);
    items.forEach((item, i) => {
      const c = computed[i];
      if (c.ok && answered[i].reply?.ok) this.tally.add(item.payload.tenantId, c.seconds);
    });
    return answered;
  }

  /**
   * The batch's rows in one predict call, split back per request. When the batch as a whole is
   * refused for bad input, each request runs alone so that only the bad one fails.
   */
  private async compute(items: LaneRequest[]): Promise<Computed[]> {
    const { tenantId, versionId, explain } = items[0].payload;
    try {
      const out = await this.inference.predict(
        tenantId,
        versionId,
        items.flatMap((r) => r.payload.inputs),
        explain,
      );
      return split(items, out);
    } catch (err) {
      const failure = this.classify(err);
      if (failure.code !== 'input_invalid' || items.length === 1) return items.map(() => ({ ok: false, failure }));
      const alone: Computed[] = [];
      for (const item of items) alone.push(...(await this.compute([item])));
      return alone;
    }
  }

  private classify(err: unknown): Failure {
    if (err instanceof JobInputError)
      return { permanent: true, code: err.code === 'version_not_found' ? 'version_not_found' : 'input_invalid', message: err.message };
    if (isMlError(err) && (err.code === 'invalid_input' || err.code === 'invalid_data'))
      return { permanent: true, code: 'input_invalid', message: err.message };
    if (isMlError(err) && (err.code === 'invalid_artifact' || err.code === 'invalid_model'))
      return { permanent: true, code: 'model_unusable', message: err.message };
    if (err instanceof ChildCrashed)
      return { permanent: false, code: 'worker_crashed', message: 'The compute process serving the prediction exited; try again' };
    this.log.warn(`sync prediction batch failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { permanent: false, code: 'internal_error', message: 'The prediction hit an internal error; see the worker logs' };
  }

  private record(
    item: LaneRequest,
    meta: { workerId: string; backend: string; startedAt: string; finishedAt: string; attempts: number },
    outcome: Pick<SyncPredictionRecord, 'status' | 'result' | 'error' | 'computeSeconds' | 'pages'>,
  ): SyncPredictionRecord {
    const p = item.payload;
    return {
      ...meta,
      ...outcome,
      id: p.jobId,
      tenantId: p.tenantId,
      modelId: p.modelId,
      version: p.version,
      alias: p.alias,
      metadata: p.metadata,
      explain: p.explain,
      maxAttempts: PREDICT_MAX_ATTEMPTS,
      createdAt: p.createdAt,
    };
  }

  /** One message per asking API instance; a lost one is covered by the API's look at the job row. */
  private publishReplies(items: LaneRequest[], outcomes: LaneOutcome[]): void {
    const byInstance = new Map<string, PredictReply[]>();
    items.forEach((item, i) => {
      const reply = outcomes[i].reply;
      if (!reply) return;
      const list = byInstance.get(item.payload.replyTo);
      if (list) list.push(reply);
      else byInstance.set(item.payload.replyTo, [reply]);
    });
    for (const [instance, replies] of byInstance) {
      this.redis!.publish(predictRepliesChannel(this.config, instance), JSON.stringify(replies)).catch((err: Error) =>
        this.log.warn(`publish replies: ${err.message}`),
      );
    }
  }

  /** Rows the API had recorded as queued (it stopped waiting) just ended: their watchers hear it, like any job's. */
  private publishEvents(events: Awaited<ReturnType<SyncPredictionRepository['record']>>, items: LaneRequest[]): void {
    const warn = (err: Error) => this.log.warn(`publish event: ${err.message}`);
    const tenants = new Set<string>();
    for (const e of events) {
      publishSharded(this.config, this.redis!, jobEventsChannel(this.config, e.job_id), JSON.stringify(e)).catch(warn);
      const tenantId = items.find((i) => i.payload.jobId === e.job_id)?.payload.tenantId;
      if (tenantId) tenants.add(tenantId);
    }
    for (const tenantId of tenants)
      this.redis!.publish(invalidationChannel(this.config), JSON.stringify({ usageOf: tenantId })).catch(warn);
  }

  private async flushUsage(final: boolean): Promise<void> {
    const increments = this.tally.take(final);
    if (increments.length === 0) return;
    try {
      await this.usage.add(increments);
    } catch (err) {
      this.tally.restore(increments);
      this.log.warn(`usage of sync predictions postponed: ${(err as Error).message}`);
    }
  }
}

/** A batch's output cut back into each request's share (rows, and compute time in proportion). */
function split(items: LaneRequest[], out: InferenceOutput): Computed[] {
  const total = out.predictions.length;
  let offset = 0;
  return items.map((item) => {
    const n = item.payload.inputs.length;
    const part: InferenceOutput = {
      predictions: out.predictions.slice(offset, offset + n),
      ...(out.explanations ? { explanations: out.explanations.slice(offset, offset + n) } : {}),
      seconds: total > 0 ? (out.seconds * n) / total : 0,
    };
    offset += n;
    return { ok: true, out: part, seconds: part.seconds };
  });
}
