import type { AppConfig } from '@app/config';
import type { ConnectionOptions } from 'bullmq';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * A key of this deployment: `{prefix:unit}:parts…`. The braces are Redis Cluster's hash tag: every
 * key of one unit (a queue, a tenant, the scheduler: what one script or MULTI must touch together)
 * lands in one slot, and different units spread over the cluster's slots. A test run or a second
 * deployment never sees another's keys. See docs/scaling.md for the units.
 */
export function redisKey(config: Pick<AppConfig, 'redisPrefix'>, unit: string, ...parts: string[]): string {
  return [`{${config.redisPrefix}:${unit}}`, ...parts].join(':');
}

/** The unit of one tenant's keys (rate buckets, request meter, idempotency records, upload slots). */
export function tenantUnit(tenantId: string): string {
  return `t:${tenantId}`;
}

export type RedisRole = 'command' | 'subscriber' | 'blocking';

/** What a connection needs of the configuration (the cluster's nodes may be left out: one Redis). */
export type RedisConfig = Pick<AppConfig, 'redisUrl'> & Partial<Pick<AppConfig, 'redisClusterNodes'>>;

/** A connection to one Redis or to a Redis Cluster: the commands this code base uses are the same on both. */
export type RedisClient = Redis | Cluster;

/** Reconnecting after a lost connection: 100 ms, doubling, at most 2 s between tries. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000);

/** Per role: commands fail fast while Redis is down; subscribers and blocking connections retry forever. */
function roleOptions(name: string, role: RedisRole): RedisOptions {
  const options: RedisOptions = { connectionName: `${name}:${role}`, reconnectOnError: () => true };
  if (role === 'command') {
    options.maxRetriesPerRequest = 1;
    options.connectTimeout = 2_000;
    options.commandTimeout = 2_000;
  } else {
    options.maxRetriesPerRequest = null;
  }
  return options;
}

/**
 * A Redis connection (an ioredis `Cluster` when the configuration names cluster nodes). Commands
 * fail fast while Redis is down (readiness and the API answer 503 instead of hanging);
 * subscribers and BullMQ's blocking connections retry forever. Commands issued in the same tick
 * (the rate limiter of many concurrent requests) share one socket write per node: on these
 * machines a loopback write costs as much as the command itself.
 */
export function createRedis(config: RedisConfig, role: RedisRole, name = 'aiaas', options: { sharded?: boolean } = {}): RedisClient {
  const redis = config.redisClusterNodes
    ? new Cluster(config.redisClusterNodes, { ...clusterOptions(name, role), shardedSubscribers: options.sharded === true })
    : new Redis(config.redisUrl, {
        ...roleOptions(name, role),
        retryStrategy,
        ...(role === 'command' ? { enableAutoPipelining: true, enableOfflineQueue: false } : {}),
      });
  // Errors surface on the commands that hit them; the connection event would only crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * On a cluster a command whose slot has no master (a failover under way) is retried (CLUSTERDOWN,
 * TRYAGAIN, MOVED while the topology settles) for the time maxRedirections gives, then fails: the API answers 503.
 * The offline queue stays on (the default): a refresh of the slot map parks commands for
 * milliseconds, and `commandTimeout` bounds how long any of them waits.
 */
function clusterOptions(name: string, role: RedisRole): ClusterOptions {
  return {
    clusterRetryStrategy: retryStrategy,
    enableAutoPipelining: role === 'command',
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    retryDelayOnFailover: 200,
    // About 1.6 s for a command (then the API answers 503), about 10 s for workers and subscribers,
    // which ride through a failover (3-5 s with cluster-node-timeout 2000) rather than restart.
    maxRedirections: role === 'command' ? 8 : 50,
    slotsRefreshTimeout: 2_000,
    redisOptions: roleOptions(name, role),
  };
}

const sharedBullClusters = new Map<string, Cluster>();

/**
 * The connection options of a BullMQ Queue or Worker (BullMQ makes its own ioredis clients from
 * them), with the roles of createRedis: `command` fails an add within ~0.1 s while Redis is down,
 * `blocking` (Workers, and whatever must wait for Redis) retries forever. Not `enableOfflineQueue:
 * false` for commands: BullMQ 6 sends its first command (INFO) while the socket is still connecting,
 * and a Queue whose init failed stays failed for good (JobQueues.call replaces such a Queue).
 * On a cluster, one `Cluster` per role and process, shared by every Queue and Worker (BullMQ
 * duplicates it for a Worker's blocking commands); closeBullConnections ends them.
 */
export function bullConnection(config: RedisConfig, role: Exclude<RedisRole, 'subscriber'>): ConnectionOptions {
  if (config.redisClusterNodes) {
    const key = `${role} ${config.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
    let cluster = sharedBullClusters.get(key);
    if (!cluster) {
      cluster = new Cluster(config.redisClusterNodes, clusterOptions('bullmq', role));
      cluster.on('error', () => undefined);
      sharedBullClusters.set(key, cluster);
    }
    return cluster;
  }
  return role === 'command'
    ? { url: config.redisUrl, retryStrategy, maxRetriesPerRequest: 1, connectTimeout: 2_000 }
    : { url: config.redisUrl, retryStrategy, maxRetriesPerRequest: null };
}

/**
 * Ends the shared cluster connections of bullConnection, after every Queue and Worker closed (the
 * specs that make them; the API and workers exit once their Nest application has closed).
 */
export async function closeBullConnections(): Promise<void> {
  const clusters = [...sharedBullClusters.values()];
  sharedBullClusters.clear();
  await Promise.all(clusters.map((c) => c.quit().catch(() => c.disconnect())));
}

/**
 * Whether an error says Redis (or a slot of the cluster) does not answer now: down, restarting, a
 * failover under way, commands timing out. The API answers these 503 with Retry-After, never 500.
 */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | null;
  if (!e || typeof e.message !== 'string') return false;
  if (e.name === 'MaxRetriesPerRequestError' || e.name === 'ClusterAllFailedError') return true;
  return REDIS_UNAVAILABLE.test(e.message);
}

const REDIS_UNAVAILABLE =
  /^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|MASTERDOWN|READONLY)\b|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Connection is closed|Command timed out|Stream isn't writeable|connect (ECONNREFUSED|ETIMEDOUT)|read ECONNRESET/;

/** Pub/sub channel on which API instances tell each other (and workers tell them) what changed: see InvalidationBus. */
export function invalidationChannel(config: Pick<AppConfig, 'redisPrefix'>): string {
  return redisKey(config, 'bus', 'invalidate');
}

/**
 * Sharded pub/sub, for the busiest channels (a job's events: one channel per job): on a cluster
 * SPUBLISH sends a message to the shard that owns the channel's slot only, where a plain PUBLISH
 * is copied to every node over the cluster bus (bench "cluster": 32.5 against 51 µs of Redis CPU per
 * message on 6 nodes, and the gap grows with the node count). On one Redis it is plain pub/sub,
 * as before. The subscriber side is a createRedis(…, { sharded: true }) connection and
 * `subscribeSharded`/`onShardedMessage`.
 */
export function publishSharded(config: RedisConfig, redis: RedisClient, channel: string, message: string): Promise<unknown> {
  return config.redisClusterNodes ? redis.spublish(channel, message) : redis.publish(channel, message);
}

export function subscribeSharded(config: RedisConfig, subscriber: RedisClient, channel: string): Promise<unknown> {
  return config.redisClusterNodes ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel);
}

export function unsubscribeSharded(config: RedisConfig, subscriber: RedisClient, channel: string): Promise<unknown> {
  return config.redisClusterNodes ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
}

export function onShardedMessage(config: RedisConfig, subscriber: RedisClient, handler: (channel: string, message: string) => void): void {
  subscriber.on(config.redisClusterNodes ? 'smessage' : 'message', handler);
}

/**
 * PUBLISH, with the same message to the same channel sent once per event-loop turn: under load
 * many submissions of one tenant each say "its usage changed" or "work is waiting", and one
 * message says it for all. A message goes out at the end of the turn in which it was first asked
 * for, so it always follows what its callers did before asking (their commits, their enqueues,
 * sent earlier on the same connection); each caller's promise settles once Redis has it.
 */
export function coalescingPublisher(redis: Pick<RedisClient, 'publish'>): (channel: string, message: string) => Promise<void> {
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
