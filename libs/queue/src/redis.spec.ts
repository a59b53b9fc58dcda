import { describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import {
  bullConnection,
  closeBullConnections,
  coalescingPublisher,
  createRedis,
  isRedisUnavailable,
  redisKey,
  tenantUnit,
} from './redis.js';

/** A stand-in for ioredis's publish that records what was sent, answering (or failing) when told. */
function fakeRedis(fail = false) {
  const sent: string[] = [];
  return {
    sent,
    publish: (channel: string, message: string) => {
      sent.push(`${channel} ${message}`);
      return fail ? Promise.reject(new Error('redis down')) : Promise.resolve(1);
    },
  };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('coalescingPublisher', () => {
  it('sends the same message to the same channel once per event-loop turn, and settles every caller', async () => {
    const redis = fakeRedis();
    const publish = coalescingPublisher(redis);
    const calls = [publish('a', 'x'), publish('a', 'x'), publish('a', 'y'), publish('b', 'x'), publish('a', 'x')];
    expect(redis.sent).toEqual([]);
    await Promise.all(calls);
    expect(redis.sent).toEqual(['a x', 'a y', 'b x']);
  });

  it('sends again in a later turn: a message asked for after one went out goes out too', async () => {
    const redis = fakeRedis();
    const publish = coalescingPublisher(redis);
    await publish('a', 'x');
    await turn();
    await publish('a', 'x');
    expect(redis.sent).toEqual(['a x', 'a x']);
  });

  it('sends at the end of the turn, after whatever its callers sent before asking', async () => {
    const redis = fakeRedis();
    const publish = coalescingPublisher(redis);
    const done = publish('a', 'wake');
    await redis.publish('a', 'enqueue');
    await done;
    expect(redis.sent).toEqual(['a enqueue', 'a wake']);
  });

  it('fails every caller of a message Redis refused', async () => {
    const publish = coalescingPublisher(fakeRedis(true));
    const results = await Promise.allSettled([publish('a', 'x'), publish('a', 'x')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});

describe('keys and connections', () => {
  it('puts every key of a unit under one hash tag, and different units under different ones', () => {
    const c = { redisPrefix: 'p' };
    expect(redisKey(c, tenantUnit('ten_1'), 'rl')).toBe('{p:t:ten_1}:rl');
    expect(redisKey(c, tenantUnit('ten_1'), 'usage', 'flushing')).toBe('{p:t:ten_1}:usage:flushing');
    expect(redisKey(c, 'sched')).toBe('{p:sched}');
  });

  it('makes an ioredis Cluster when cluster nodes are configured, one Redis otherwise', async () => {
    const single = createRedis({ redisUrl: 'redis://127.0.0.1:1' }, 'command');
    const cluster = createRedis({ redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: [{ host: '127.0.0.1', port: 1 }] }, 'command');
    try {
      expect(single).toBeInstanceOf(Redis);
      expect(cluster).toBeInstanceOf(Cluster);
      // BullMQ's connections on a cluster: one shared Cluster per role.
      const nodes = { redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: [{ host: '127.0.0.1', port: 1 }] };
      const a = bullConnection(nodes, 'command');
      expect(a).toBeInstanceOf(Cluster);
      expect(bullConnection(nodes, 'command')).toBe(a);
      expect(bullConnection(nodes, 'blocking')).not.toBe(a);
      expect(bullConnection({ redisUrl: 'redis://127.0.0.1:1' }, 'command')).toMatchObject({ url: 'redis://127.0.0.1:1' });
    } finally {
      single.disconnect();
      cluster.disconnect();
      await closeBullConnections();
    }
  });

  it('tells a Redis or cluster outage from other errors', () => {
    for (const message of [
      'CLUSTERDOWN The cluster is down',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'Connection is closed.',
      'Command timed out',
      "Stream isn't writeable and enableOfflineQueue options is false",
      'connect ECONNREFUSED 127.0.0.1:6379',
    ])
      expect(isRedisUnavailable(new Error(message))).toBe(true);
    expect(isRedisUnavailable(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
    expect(isRedisUnavailable(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isRedisUnavailable(new Error('ERR syntax error'))).toBe(false);
    expect(isRedisUnavailable(null)).toBe(false);
  });
});
