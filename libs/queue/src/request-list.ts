import type { RedisClient } from './redis.js';

/**
 * A plain Redis list of JSON requests, the transport of the request/response paths (sync
 * predictions, foundation-model requests, load checks of imports): one RPUSH per request
 * (auto-pipelined with its neighbours), and a consumer takes as many as it has room for with one
 * BLMPOP, which is what lets its batches fill. The answers travel back over pub/sub.
 */
export class RequestList<P> {
  constructor(
    readonly key: string,
    private readonly redis: RedisClient,
  ) {}

  /** Adds a request at the back; fails fast while Redis is down (a command connection). */
  async add(payload: P): Promise<void> {
    await this.redis.rpush(this.key, JSON.stringify(payload));
  }

  /** Puts a request back at the front, for its next attempt. */
  async retry(payload: P): Promise<void> {
    await this.redis.lpush(this.key, JSON.stringify(payload));
  }

  /** Takes up to `max` requests, waiting up to `timeoutSeconds` for the first. Needs a connection of its own (a blocking command holds it). */
  async take(blocking: RedisClient, max: number, timeoutSeconds: number): Promise<P[]> {
    const got = (await blocking.call('BLMPOP', String(timeoutSeconds), '1', this.key, 'LEFT', 'COUNT', String(max))) as
      | [string, string[]]
      | null;
    return got ? got[1].map((raw) => JSON.parse(raw) as P) : [];
  }

  /** Requests waiting (tests, metrics). */
  length(): Promise<number> {
    return this.redis.llen(this.key);
  }
}
