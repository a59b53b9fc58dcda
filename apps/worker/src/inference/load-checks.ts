import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, type LoadCheckOutcome, LoadCheckRepository } from '@app/db';
import { isMlError } from '@app/ml';
import { createRedis, type LoadCheckPayload, LoadCheckQueue, loadCheckRepliesChannel, type RedisClient } from '@app/queue';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ChildCrashed } from '../compute/pool.js';
import { InferencePool } from './inference-pool.js';

/** How long one BLMPOP waits for a check (the loop then looks whether it should stop). */
const TAKE_TIMEOUT_S = 1;
/** Staged imports older than this were abandoned by their API instance (it died): swept. */
const ABANDONED_AFTER_MS = 3_600_000;
const SWEEP_EVERY_MS = 600_000;

/**
 * The worker's side of import load checks (libs/queue LoadCheckQueue): takes one staged import at
 * a time, loads it in an inference child exactly as serving would and predicts once on zeros
 * (InferencePool.check), records the verdict on the staged row, then publishes it to the waiting
 * API instance. A check whose staged row is gone (the API gave up waiting) is answered as such, unread.
 */
@Injectable()
export class LoadCheckConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('load-check');
  private readonly checks: LoadCheckRepository;
  private redis: RedisClient | null = null;
  private blocking: RedisClient | null = null;
  private queue: LoadCheckQueue | null = null;
  private consuming: Promise<void> = Promise.resolve();
  private stopping = false;
  private sweptAt = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    db: Database,
    private readonly inference: InferencePool,
  ) {
    this.checks = new LoadCheckRepository(db);
  }

  onApplicationBootstrap(): void {
    this.redis = createRedis(this.config, 'command', 'worker-load-check');
    this.queue = new LoadCheckQueue(this.config, this.redis);
    // Checks stay queued, for workers that can load them, until this one's inference children are up.
    this.consuming = this.inference.ready().then(
      () => (this.stopping ? undefined : this.consume()),
      () => this.log.error('not taking load checks: the inference children did not start'),
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.consuming;
    this.blocking?.disconnect();
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }

  private async consume(): Promise<void> {
    this.blocking = createRedis(this.config, 'blocking', 'worker-load-check');
    while (!this.stopping) {
      await this.sweep();
      let taken: LoadCheckPayload[];
      try {
        taken = await this.queue!.take(this.blocking, 1, TAKE_TIMEOUT_S);
      } catch (err) {
        if (!this.stopping) this.log.warn(`taking load checks: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const payload of taken) await this.check(payload);
    }
  }

  private async check(p: LoadCheckPayload): Promise<void> {
    let artifact: Buffer | null;
    try {
      artifact = await this.checks.artifact(p.id);
    } catch (err) {
      return this.answer(p, {
        ok: false,
        error: { code: 'internal_error', message: `The staged model could not be read: ${(err as Error).message}` },
      });
    }
    // Gone: the API gave up waiting, or the model was deleted meanwhile (an API still waiting stops at once).
    if (!artifact)
      return this.answer(p, {
        ok: false,
        error: { code: 'staged_import_gone', message: 'The staged model was discarded before it was loaded' },
      });
    // The API stops waiting after this long: a check still running then has no one to tell.
    const signal = AbortSignal.timeout(this.config.importCheckTimeoutMs);
    let outcome: LoadCheckOutcome;
    try {
      await this.inference.check(new Uint8Array(artifact), signal);
      outcome = { ok: true };
    } catch (err) {
      outcome = { ok: false, error: this.classify(err, signal.aborted) };
    }
    await this.checks.record(p.id, outcome).catch((err: Error) => this.log.warn(`recording load check ${p.id}: ${err.message}`));
    await this.answer(p, outcome);
  }

  private classify(err: unknown, timedOut: boolean): { code: string; message: string } {
    if (timedOut)
      return { code: 'load_check_timeout', message: `Loading the model took longer than ${this.config.importCheckTimeoutMs} ms` };
    if (isMlError(err) && (err.code === 'invalid_model' || err.code === 'invalid_artifact' || err.code === 'invalid_input'))
      return { code: 'model_invalid', message: err.message };
    if (err instanceof ChildCrashed) return { code: 'worker_crashed', message: 'The compute process loading the model exited; try again' };
    this.log.warn(`load check failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { code: 'internal_error', message: 'The load check hit an internal error; see the worker logs' };
  }

  private async answer(p: LoadCheckPayload, outcome: LoadCheckOutcome): Promise<void> {
    const reply = { id: p.id, ...outcome };
    await this.redis!.publish(loadCheckRepliesChannel(this.config, p.replyTo), JSON.stringify(reply)).catch((err: Error) =>
      this.log.warn(`publish load check: ${err.message}`),
    );
  }

  private async sweep(): Promise<void> {
    if (Date.now() - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = Date.now();
    await this.checks.sweep(ABANDONED_AFTER_MS).catch((err: Error) => this.log.warn(`sweeping staged imports: ${err.message}`));
  }
}
