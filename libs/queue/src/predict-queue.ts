import type { AppConfig } from '@app/config';
import type { PredictPayload } from './predict.js';
import { redisKey, type RedisClient } from './redis.js';
import { RequestList } from './request-list.js';

/**
 * The `predict` queue: a plain Redis list of sync prediction requests (JSON), not a BullMQ queue.
 *
 * A sync prediction is a request/response, not a job to keep: its client is waiting, and the
 * answer goes back within the wait. BullMQ would spend three Lua scripts, a lock and its renewals
 * on each request (add, move to active, move to finished), which is most of a request's cost at
 * thousands per second on two cores. Here a request is one RPUSH (auto-pipelined with its
 * neighbours), and a worker takes as many as it has room for with one BLMPOP, which is what lets
 * a batch fill. What BullMQ would add, durability of the request, is not lost: if no reply comes
 * within the wait (a worker died holding the request, or none runs), the API writes the request
 * as an ordinary queued inference job and answers 202, and the job engine runs it like any other
 * (through the reconciler) unless a worker recorded it first. See docs/jobs.md, "Sync inference".
 */
export class PredictQueue extends RequestList<PredictPayload> {
  constructor(config: Pick<AppConfig, 'redisPrefix'>, redis: RedisClient) {
    super(predictQueueKey(config), redis);
  }
}

export function predictQueueKey(config: Pick<AppConfig, 'redisPrefix'>): string {
  return redisKey(config, 'predict', 'requests');
}
