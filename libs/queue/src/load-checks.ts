import type { AppConfig } from '@app/config';
import type { Redis } from 'ioredis';
import { redisKey } from './redis.js';

/**
 * Load checks of imported models (POST /v1/models/{id}/versions), on the sync inference path's
 * transport: the API stages the artifact in PostgreSQL (libs/db StagedImportRepository), pushes
 * the staged import's id on this list, and waits on its reply channel; a worker loads the
 * artifact in an inference child as serving would, predicts once, records the verdict on the row
 * and publishes it. The payload carries ids only: artifacts can be tens of MB.
 */
export interface LoadCheckPayload {
  /** The staged import (`imp_…`). */
  id: string;
  tenantId: string;
  /** The API instance waiting for the verdict (its reply channel). */
  replyTo: string;
}

export interface LoadCheckReply {
  id: string;
  ok: boolean;
  /** `model_invalid`: the model cannot serve (the import's fault); anything else is ours. */
  error?: { code: string; message: string };
}

/** A plain Redis list, as the predict queue (libs/queue PredictQueue): one RPUSH per check, one BLMPOP per take. */
export class LoadCheckQueue {
  readonly key: string;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    private readonly redis: Redis,
  ) {
    this.key = redisKey(config, 'load-checks', 'requests');
  }

  async add(payload: LoadCheckPayload): Promise<void> {
    await this.redis.rpush(this.key, JSON.stringify(payload));
  }

  /** Takes up to `max` checks, waiting up to `timeoutSeconds` for one. Needs a connection of its own. */
  async take(blocking: Redis, max: number, timeoutSeconds: number): Promise<LoadCheckPayload[]> {
    const got = (await blocking.call('BLMPOP', String(timeoutSeconds), '1', this.key, 'LEFT', 'COUNT', String(max))) as [string, string[]] | null;
    return got ? got[1].map((raw) => JSON.parse(raw) as LoadCheckPayload) : [];
  }
}

/** The channel on which workers publish verdicts (one JSON LoadCheckReply) meant for one API instance. */
export function loadCheckRepliesChannel(config: Pick<AppConfig, 'redisPrefix'>, instanceId: string): string {
  return redisKey(config, 'load-checks', 'replies', instanceId);
}
