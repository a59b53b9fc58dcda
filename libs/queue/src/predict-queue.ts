import type { AppConfig } from '@app/config';
import type { Redis } from 'ioredis';
import type { PredictPayload } from './predict.js';
import { redisKey } from './redis.js';

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
export class PredictQueue {
  readonly key: string;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    private readonly redis: Redis,
  ) {
    this.key = predictQueueKey(config);
  }

  /** Adds a request at the back; fails fast while Redis is down (a command connection). */
  async add(payload: PredictPayload): Promise<void> {
    await this.redis.rpush(this.key, JSON.stringify(payload));
  }

  /** Puts a request back at the front, for its next attempt. */
  async retry(payload: PredictPayload): Promise<void> {
    await this.redis.lpush(this.key, JSON.stringify(payload));
  }

  /**
   * Takes up to `max` requests, waiting up to `timeoutSeconds` for the first one. Needs a
   * connection of its own (a blocking command holds it).
   */
  async take(blocking: Redis, max: number, timeoutSeconds: number): Promise<PredictPayload[]> {
    const got = (await blocking.call('BLMPOP', String(timeoutSeconds), '1', this.key, 'LEFT', 'COUNT', String(max))) as [string, string[]] | null;
    return got ? got[1].map((raw) => JSON.parse(raw) as PredictPayload) : [];
  }

  /** Requests waiting (tests, metrics). */
  length(): Promise<number> {
    return this.redis.llen(this.key);
  }
}

export function predictQueueKey(config: Pick<AppConfig, 'redisPrefix'>): string {
  return redisKey(config, 'predict', 'requests');
}
