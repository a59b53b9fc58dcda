/**
 * The Redis Cluster harness itself (issue 18, test/support/redis-cluster.ts): 3 masters and 3
 * replicas on loopback, keys spread by hash tag, a master SIGKILLed and replaced by its replica,
 * the old master back as a replica, and nothing left behind. Runs under `npm run test:cluster`
 * only (AIAAS_CLUSTER_TESTS=1, jest.config.js): it starts processes and takes a few seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { type Failover, isPortFree, type KilledMaster, type RedisClusterHandle, startRedisCluster } from '../support/redis-cluster.js';

const KEYS = 30;
const key = (i: number) => `h18:{tag-${i}}`;

let cluster: RedisClusterHandle;
let client: Cluster;
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  const t0 = Date.now();
  cluster = await startRedisCluster();
  figures.start_ms = Date.now() - t0;
  figures.startup = cluster.startup;
  client = new Cluster(cluster.nodes, { retryDelayOnFailover: 100, retryDelayOnClusterDown: 100, redisOptions: { connectTimeout: 1000 } });
  client.on('error', () => undefined);
  client.on('node error', () => undefined);
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
  process.stdout.write(
    `cluster harness: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(' ')}\n`,
  );
});

describe('Redis Cluster harness', () => {
  it('starts 3 masters with a replica each, all 16384 slots covered exactly once', async () => {
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    for (const m of masters) expect(m.replicas).toHaveLength(1);
    const ranges = masters.flatMap((m) => m.slots).sort((a, b) => a[0] - b[0]);
    let next = 0;
    for (const [from, to] of ranges) {
      expect(from).toBe(next);
      expect(to).toBeGreaterThanOrEqual(from);
      next = to + 1;
    }
    expect(next).toBe(16384);
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.env.REDIS_CLUSTER_NODES).toBe(cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(','));
    for (const { port } of cluster.nodes) expect(port === 6379 || (port >= 7000 && port <= 7005)).toBe(false);
  });

  it('spreads keys with different hash tags over at least 2 masters', async () => {
    for (let i = 0; i < KEYS; i++) expect(await client.set(key(i), `v${i}`)).toBe('OK');
    const counts = await cluster.keysPerMaster('h18:*');
    figures.keys_per_master = counts;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(KEYS);
    expect(Object.values(counts).filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(await client.get(key(7))).toBe('v7');
  });

  let killed: KilledMaster;
  let failover: Failover;

  it('kills a master: writes to its slots fail or wait, its replica takes over, the data is still there', async () => {
    const slot = await client.cluster('KEYSLOT', key(0));
    const owner = (await cluster.masters()).find((m) => m.slots.some(([a, b]) => a <= slot && slot <= b))!;
    // Every write so far has reached the replica before the kill (WAIT after a write on the same connection).
    const direct = new Redis({ port: owner.port, host: '127.0.0.1', lazyConnect: true });
    await direct.connect();
    await direct.set('fence:{tag-0}', '1');
    expect(await direct.wait(1, 5000)).toBe(1);
    direct.disconnect();

    killed = await cluster.killMaster(owner.port);
    expect(killed.port).toBe(owner.port);
    expect(killed.replica).toBe(owner.replicas[0]);
    expect(await isPortFree(owner.port)).toBe(true);

    // A write to a key of the dead master's slots: ioredis either gives up or retries until the replica is promoted.
    const t = Date.now();
    const during = client.set(key(0), 'during').then(
      () => ({ ok: true, ms: Date.now() - t }),
      (err: Error) => ({ ok: false, ms: Date.now() - t, error: err.message }),
    );
    failover = await cluster.waitForFailover(killed.port);
    const outcome = await during;
    figures.failover_ms = failover.ms;
    figures.write_during_failover = outcome;
    expect(failover.promoted).toBe(killed.replica);
    // Nothing can serve the slot before the node timeout (2 s) has marked the master failed: a success was retried.
    if (outcome.ok) expect(outcome.ms).toBeGreaterThanOrEqual(1500);
    else expect('error' in outcome && outcome.error).toMatch(/closed|redirection|CLUSTERDOWN|refused|reset/i);

    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    expect(masters.map((m) => m.port)).toContain(killed.replica);
    expect(masters.map((m) => m.port)).not.toContain(killed.port);
    const promoted = masters.find((m) => m.port === killed.replica)!;
    expect(promoted.slots).toEqual(killed.slots);

    expect(await client.set(key(0), 'after')).toBe('OK');
    expect(await client.get(key(0))).toBe('after');
    for (let i = 1; i < KEYS; i++) expect(await client.get(key(i))).toBe(`v${i}`);
    expect((await cluster.keysPerMaster('h18:*'))[promoted.port]).toBeGreaterThan(0);
  });

  it('restarts the killed master: it rejoins as the replica of the promoted one', async () => {
    const t = Date.now();
    await cluster.restartNode(killed.port);
    figures.rejoin_ms = Date.now() - t;
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    expect(masters.find((m) => m.port === failover.promoted)!.replicas).toEqual([killed.port]);
  });

  it('stop() kills every node, frees the ports and removes the temporary directory', async () => {
    const pids = Object.values(cluster.pids());
    expect(pids).toHaveLength(6);
    client.disconnect();
    await cluster.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    for (const { port } of cluster.nodes) {
      expect(await isPortFree(port)).toBe(true);
      expect(await isPortFree(port + 10_000)).toBe(true);
    }
    expect(existsSync(cluster.dir)).toBe(false);
    await cluster.stop(); // idempotent
  });
});
