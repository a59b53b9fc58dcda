import type { AppConfig } from '@app/config';
import { redisKey, type RedisClient } from './redis.js';
import { RequestList } from './request-list.js';

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

export class LoadCheckQueue extends RequestList<LoadCheckPayload> {
  constructor(config: Pick<AppConfig, 'redisPrefix'>, redis: RedisClient) {
    super(redisKey(config, 'load-checks', 'requests'), redis);
  }
}

/** The channel on which workers publish verdicts (one JSON LoadCheckReply) meant for one API instance. */
export function loadCheckRepliesChannel(config: Pick<AppConfig, 'redisPrefix'>, instanceId: string): string {
  return redisKey(config, `i:${instanceId}`, 'load-check-replies');
}
