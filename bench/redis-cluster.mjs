// A throwaway Redis Cluster for the bench: `masters` masters with one replica each on loopback
// ports of their own, in a temporary directory; stop() kills the nodes and removes the directory.
// (test/support/redis-cluster.ts is the test suite's fuller version: failover, restarts, key counts.)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOST = '127.0.0.1';

async function free(port) {
  const srv = createServer();
  const ok = await new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  return ok;
}

function cli(port, ...args) {
  return spawnSync('redis-cli', ['-h', HOST, '-p', String(port), ...args], { encoding: 'utf8' });
}

/** Starts the cluster; resolves once every node says cluster_state:ok and every replica is linked. */
export async function startRedisCluster({ masters = 3, timeoutMs = 30_000 } = {}) {
  const n = masters * 2;
  let base;
  for (let tries = 0; tries < 50 && base === undefined; tries++) {
    const candidate = 20_000 + Math.floor(Math.random() * 20_000);
    const ports = Array.from({ length: n }, (_, i) => candidate + i);
    if ((await Promise.all(ports.flatMap((p) => [free(p), free(p + 10_000)]))).every(Boolean)) base = candidate;
  }
  if (base === undefined) throw new Error('no free ports for a Redis Cluster');
  const ports = Array.from({ length: n }, (_, i) => base + i);
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-bench-cluster-'));
  const procs = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        HOST,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--repl-diskless-sync-delay',
        '0',
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : null)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const end = Date.now() + timeoutMs;
    const wait = async (what, ok) => {
      while (!ok()) {
        if (Date.now() > end) throw new Error(`Redis Cluster: timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await wait('the nodes to answer', () => ports.every((p) => cli(p, 'ping').stdout.trim() === 'PONG'));
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
      {
        encoding: 'utf8',
      },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create: ${create.stdout}${create.stderr}`);
    await wait('cluster_state:ok on every node', () => ports.every((p) => /cluster_state:ok/.test(cli(p, 'cluster', 'info').stdout)));
    await wait('every replica to be linked', () =>
      ports.every((p) => {
        const info = cli(p, 'info', 'replication').stdout;
        return /role:master/.test(info) || /master_link_status:up/.test(info);
      }),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, env: { REDIS_CLUSTER_NODES: ports.map((p) => `${HOST}:${p}`).join(',') }, pids: procs.map((p) => p.pid), stop };
}
