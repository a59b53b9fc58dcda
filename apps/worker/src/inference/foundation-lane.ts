import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, UsageRepository } from '@app/db';
import { foundationModel, isInputError } from '@app/ml';
import {
  createRedis,
  encodeVector,
  type FoundationPayload,
  FoundationQueue,
  type FoundationReply,
  foundationRepliesChannel,
  type RedisClient,
} from '@app/queue';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { Batcher } from './batcher.js';
import { InferencePool } from './inference-pool.js';
import { UsageTally } from './usage-tally.js';

const USAGE_FLUSH_MS = 5_000;
const TAKE_TIMEOUT_S = 1;
/** Inputs per encoder call: a batch closes at this many, or PREDICT_BATCH_DELAY_MS after its first request. */
const BATCH_MAX_INPUTS = 64;

export const EMBEDDING_REQUESTS_METRIC = 'embedding_requests';
export const EMBEDDING_TOKENS_METRIC = 'embedding_tokens';

type Outcome = Extract<FoundationReply, { ok: true }> | Extract<FoundationReply, { ok: false }>;

/**
 * The worker's side of foundation-model requests (embeddings, and classification by a platform
 * model): a consumer of the `foundation` list that batches the requests of every tenant naming
 * the same model and operation into one call of an inference child, where the model is loaded
 * once for all of them (a shared base is where batching across tenants pays most). A batch that
 * fails on one request's input runs its requests one by one, so that only that one is refused.
 */
@Injectable()
export class FoundationLane implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('foundation');
  private readonly batcher: Batcher<FoundationPayload, Outcome>;
  private readonly usage: UsageRepository;
  private readonly requests = new UsageTally(EMBEDDING_REQUESTS_METRIC);
  private readonly tokens = new UsageTally(EMBEDDING_TOKENS_METRIC);
  private redis: RedisClient | null = null;
  private blocking: RedisClient | null = null;
  private queue: FoundationQueue | null = null;
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
    this.usage = new UsageRepository(db);
    this.batcher = new Batcher<FoundationPayload, Outcome>(
      { maxRows: Math.max(1, Math.min(BATCH_MAX_INPUTS, config.predictBatchMaxRows)), maxDelayMs: config.predictBatchDelayMs },
      (p) => p.inputs.length,
      (_key, items) => this.runBatch(items),
    );
  }

  onApplicationBootstrap(): void {
    this.redis = createRedis(this.config, 'command', 'worker-foundation');
    this.queue = new FoundationQueue(this.config, this.redis);
    this.flushTimer = setInterval(() => void this.flushUsage(false), USAGE_FLUSH_MS);
    this.consuming = this.inference.ready().then(
      () => (this.stopping ? undefined : this.consume()),
      () => this.log.error('not consuming foundation requests: the inference children did not start'),
    );
  }

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

  private async consume(): Promise<void> {
    this.blocking = createRedis(this.config, 'blocking', 'worker-foundation');
    while (!this.stopping) {
      const room = this.config.predictConcurrency - this.held;
      if (room <= 0) {
        await new Promise<void>((r) => (this.roomFreed = r));
        continue;
      }
      let taken: FoundationPayload[];
      try {
        taken = await this.queue!.take(this.blocking, room, TAKE_TIMEOUT_S);
      } catch (err) {
        if (!this.stopping) this.log.warn(`taking foundation requests: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const p of taken) void this.process(p);
    }
  }

  private async process(p: FoundationPayload): Promise<void> {
    // Nobody waits for it any more: computing it would only delay the requests behind it.
    if (p.deadline < Date.now()) return;
    this.held++;
    try {
      await this.batcher.submit(`${p.op}|${p.model}`, p);
    } catch (err) {
      this.log.warn(`foundation request ${p.id}: ${(err as Error).message}`);
    } finally {
      this.held--;
      this.roomFreed?.();
      this.roomFreed = null;
    }
  }

  private async runBatch(items: FoundationPayload[]): Promise<Outcome[]> {
    const outcomes = await this.compute(items);
    this.publish(items, outcomes);
    items.forEach((p, i) => {
      const o = outcomes[i];
      if (!o.ok) return;
      this.requests.add(p.tenantId, o.seconds);
      const used = o.tokens?.reduce((a, b) => a + b, 0) ?? 0;
      if (used > 0) this.tokens.add(p.tenantId, 0, used);
    });
    return outcomes;
  }

  private async compute(items: FoundationPayload[]): Promise<Outcome[]> {
    const { model, op } = items[0];
    const images = foundationModel(model)?.input.type === 'image';
    const inputs = items.flatMap((p) => p.inputs);
    try {
      const out = await this.inference.foundation(
        model,
        op,
        images ? inputs.map((b64) => new Uint8Array(Buffer.from(b64, 'base64'))) : inputs,
      );
      let offset = 0;
      return items.map((p) => {
        const n = p.inputs.length;
        const slice = <T>(xs: T[] | undefined) => xs?.slice(offset, offset + n);
        const reply: Outcome = {
          id: p.id,
          ok: true,
          ...(out.vectors ? { vectors: slice(out.vectors)!.map(encodeVector) } : {}),
          ...(out.tokens ? { tokens: slice(out.tokens) } : {}),
          ...(out.truncated ? { truncated: slice(out.truncated) } : {}),
          ...(out.probabilities ? { probabilities: slice(out.probabilities) } : {}),
          seconds: (out.seconds * n) / inputs.length,
        };
        offset += n;
        return reply;
      });
    } catch (err) {
      if (isInputError(err) && items.length > 1) {
        const alone: Outcome[] = [];
        for (const p of items) alone.push(...(await this.compute([p])));
        return alone;
      }
      const error = isInputError(err)
        ? { code: 'input_invalid', message: err.message, index: err.index }
        : { code: 'internal_error', message: `The foundation model failed: ${(err as Error).message}` };
      if (!isInputError(err)) this.log.warn(`foundation batch (${model}, ${op}) failed: ${(err as Error).stack ?? err}`);
      return items.map((p) => ({ id: p.id, ok: false as const, error }));
    }
  }

  private publish(items: FoundationPayload[], outcomes: Outcome[]): void {
    const byInstance = new Map<string, Outcome[]>();
    items.forEach((p, i) => {
      const list = byInstance.get(p.replyTo);
      if (list) list.push(outcomes[i]);
      else byInstance.set(p.replyTo, [outcomes[i]]);
    });
    for (const [instance, replies] of byInstance) {
      this.redis!.publish(foundationRepliesChannel(this.config, instance), JSON.stringify(replies)).catch((err: Error) =>
        this.log.warn(`publish replies: ${err.message}`),
      );
    }
  }

  private async flushUsage(final: boolean): Promise<void> {
    const increments = [...this.requests.take(final), ...this.tokens.take(final)];
    if (increments.length === 0) return;
    try {
      await this.usage.add(increments);
    } catch (err) {
      this.log.warn(`usage of foundation requests postponed: ${(err as Error).message}`);
      // Give each tally back what it took: the token tally's increments carry its own metric.
      this.requests.restore(increments.filter((i) => i.metric !== EMBEDDING_TOKENS_METRIC));
      this.tokens.restore(increments.filter((i) => i.metric === EMBEDDING_TOKENS_METRIC));
    }
  }
}
