import type { AppConfig } from '@app/config';
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * Every Redis key of a deployment lives under one prefix in a hash tag (`{aiaas}:...`), so that
 * a test run or a second deployment never sees another's keys and everything can share a
 * Redis Cluster slot for multi-key scripts.
 */
export function redisKey(config: Pick<AppConfig, 'redisPrefix'>, ...parts: string[]): string {
  return [`{${config.redisPrefix}}`, ...parts].join(':');
}

export type RedisRole = 'command' | 'subscriber' | 'blocking';

/** Reconnecting after a lost connection: 100 ms, doubling, at most 2 s between tries. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000);

/**
 * A Redis connection. Commands fail fast while Redis is down (readiness and the API answer 503
 * instead of hanging); subscribers and BullMQ's blocking connections retry forever.
 */
export function createRedis(config: Pick<AppConfig, 'redisUrl'>, role: RedisRole, name = 'aiaas'): Redis {
  const options: RedisOptions = {
    connectionName: `${name}:${role}`,
    lazyConnect: false,
    retryStrategy,
    reconnectOnError: () => true,
  };
  if (role === 'command') {
    // Commands issued in the same tick (the rate limiter of many concurrent requests) share one
    // socket write: on these machines a loopback write costs as much as the command itself.
    options.enableAutoPipelining = true;
    options.maxRetriesPerRequest = 1;
    options.enableOfflineQueue = false;
    options.connectTimeout = 2_000;
    options.commandTimeout = 2_000;
  } else {
    options.maxRetriesPerRequest = null;
  }
  const redis = new Redis(config.redisUrl, options);
  // Errors surface on the commands that hit them; the connection event would only crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * The connection options of a BullMQ Queue or Worker (BullMQ makes its own ioredis clients from
 * them), with the roles of createRedis: `command` fails an add within ~0.1 s while Redis is down,
 * `blocking` (Workers, and whatever must wait for Redis) retries forever. Not `enableOfflineQueue:
 * false` for commands: BullMQ 6 sends its first command (INFO) while the socket is still connecting,
 * and a Queue whose init failed stays failed for good (JobQueues.call replaces such a Queue).
 */
export function bullConnection(config: Pick<AppConfig, 'redisUrl'>, role: Exclude<RedisRole, 'subscriber'>): ConnectionOptions {
  return role === 'command'
    ? { url: config.redisUrl, retryStrategy, maxRetriesPerRequest: 1, connectTimeout: 2_000 }
    : { url: config.redisUrl, retryStrategy, maxRetriesPerRequest: null };
}

/** Pub/sub channel on which API instances tell each other (and workers tell them) what changed: see InvalidationBus. */
export function invalidationChannel(config: Pick<AppConfig, 'redisPrefix'>): string {
  return redisKey(config, 'invalidate');
}

/**
 * PUBLISH, with the same message to the same channel sent once per event-loop turn: under load
 * many submissions of one tenant each say "its usage changed" or "work is waiting", and one
 * message says it for all. A message goes out at the end of the turn in which it was first asked
 * for, so it always follows what its callers did before asking (their commits, their enqueues,
 * sent earlier on the same connection); each caller's promise settles once Redis has it.
 */
export function coalescingPublisher(redis: Pick<Redis, 'publish'>): (channel: string, message: string) => Promise<void> {
  let outgoing: Map<string, { channel: string; message: string; waiters: Array<[() => void, (err: unknown) => void]> }> | null = null;
  const flush = () => {
    const batch = outgoing!;
    outgoing = null;
    for (const { channel, message, waiters } of batch.values()) {
      redis.publish(channel, message).then(
        () => {
          for (const [resolve] of waiters) resolve();
        },
        (err: unknown) => {
          for (const [, reject] of waiters) reject(err);
        },
      );
    }
  };
  return (channel, message) =>
    new Promise<void>((resolve, reject) => {
      if (!outgoing) {
        outgoing = new Map();
        setImmediate(flush);
      }
      const key = `${channel}\n${message}`;
      const entry = outgoing.get(key);
      if (entry) entry.waiters.push([resolve, reject]);
      else outgoing.set(key, { channel, message, waiters: [[resolve, reject]] });
    });
}
