/**
 * A private Redis Cluster on loopback for tests (issue 18): `masters` × (1 + `replicasPerMaster`)
 * `redis-server` processes with their own temporary directory, never the shared Redis on 6379
 * (ENVIRONMENT.md). Every wait polls a condition (CLUSTER INFO / CLUSTER NODES / INFO replication on
 * each node); nothing sleeps for a fixed time. The processes die with `stop()` and, failing that,
 * when the test process exits.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const HOST = '127.0.0.1';
const SLOTS = 16384;
/** A cluster node's bus listens on its port + 10000. */
const BUS_OFFSET = 10_000;
/** Ports other servers on these machines use (the shared Redis, a hand-made cluster on 7000-7005). */
const RESERVED = new Set([6379, 7000, 7001, 7002, 7003, 7004, 7005]);

export interface NodeAddress {
  host: string;
  port: number;
}

export interface ClusterMaster {
  port: number;
  id: string;
  /** Slot ranges it serves, inclusive: [[0, 5460]], or [[5461, 5461]] for a single slot. */
  slots: number[][];
  /** Ports of the live replicas that replicate it. */
  replicas: number[];
}

export interface KilledMaster {
  /** The port whose redis-server was SIGKILLed. */
  port: number;
  /** The replica expected to take over (with several, the one with the largest replication offset). */
  replica: number;
  /** The slots the killed master served. */
  slots: number[][];
  /** Date.now() at the kill. */
  at: number;
}

export interface Failover {
  /** The replica that now serves the killed master's slots. */
  promoted: number;
  /** From the kill to a cluster that every live node reports ok, all slots covered. */
  ms: number;
}

export interface RedisClusterHandle {
  /** Seed list: every node, masters and replicas. */
  readonly nodes: NodeAddress[];
  /** For the processes under test: `REDIS_CLUSTER_NODES=127.0.0.1:p1,127.0.0.1:p2,…`. */
  readonly env: { REDIS_CLUSTER_NODES: string };
  /** The temporary directory (nodes-<port>.conf, redis-<port>.log). */
  readonly dir: string;
  /** How long start took: processes up (PING), `redis-cli --cluster create`, then until every node is ok and linked. */
  readonly startup: { spawnMs: number; createMs: number; settleMs: number };
  /** Live masters with their slots, in slot order, as a live node sees them (CLUSTER NODES). */
  masters(): Promise<ClusterMaster[]>;
  /** SIGKILLs the redis-server of `port` (a master; the first master when omitted). */
  killMaster(port?: number): Promise<KilledMaster>;
  /** Polls until a replica of the killed master serves its slots and every live node reports cluster_state:ok. */
  waitForFailover(killedPort: number, timeoutMs?: number): Promise<Failover>;
  /** Starts a killed node again on its port with its nodes.conf; resolves once it has rejoined (a replica: link up). */
  restartNode(port: number, timeoutMs?: number): Promise<void>;
  /** SCANs every live master: port → number of keys matching `pattern` (default `*`). */
  keysPerMaster(pattern?: string): Promise<Record<number, number>>;
  /** pid of the live redis-server of each port. */
  pids(): Record<number, number>;
  /** SIGKILLs every node and removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** First port; the nodes take basePort … basePort + n - 1 (and their bus ports, + 10000). Random in 20000-40000 by default. */
  basePort?: number;
  /** How long start may take in all (default 30 s). */
  timeoutMs?: number;
}

/** Whether nothing listens on 127.0.0.1:`port` (a listen succeeds). */
export async function isPortFree(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  return ok;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something other than undefined/false; the error names the condition and the last state seen. */
async function poll<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** One short-lived connection to one node that never retries (a dead node fails fast). */
async function onNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    // disconnect() waits this long for the socket to close; a refused connect never closes twice (Jest would wait)
    disconnectTimeout: 100,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    if (r.status !== 'end') r.disconnect();
  }
}

/** `a:b\r\nc:d` (CLUSTER INFO, INFO) → { a: 'b', c: 'd' }. */
function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

interface NodeLine {
  id: string;
  port: number;
  flags: Set<string>;
  masterId: string | null;
  slots: number[][];
}

/** One line of CLUSTER NODES: `<id> <ip:port@cport> <flags> <master|-> <ping> <pong> <epoch> <link> <slot…>`. */
function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(addr)?.[1] ?? 0);
      return {
        id,
        port,
        flags: new Set(flags.split(',')),
        masterId: master === '-' ? null : master,
        // `[slot->-id]` entries are slots being imported/migrated, not served
        slots: slots.filter((s) => !s.startsWith('[')).map((s) => s.split('-').map(Number)),
      };
    })
    .map((n) => ({ ...n, slots: n.slots.map((r) => (r.length === 1 ? [r[0], r[0]] : r)) }));
}

const slotCount = (ranges: number[][]) => ranges.reduce((n, [a, b]) => n + b - a + 1, 0);

/**
 * Kills the nodes if this process dies without stop(): Jest hands a test its own copy of `process`
 * whose 'exit' event never fires, and a SIGKILLed runner runs no handler at all. So a small child
 * holds a pipe from us; when the pipe closes without a "disarm" line (we died), it SIGKILLs every
 * pid it was told about and removes the directory.
 */
const WATCHDOG = `
const pids = new Set(); let dir = ''; let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (line === 'disarm') process.exit(0);
    if (line.startsWith('pid ')) pids.add(Number(line.slice(4)));
    if (line.startsWith('gone ')) pids.delete(Number(line.slice(5)));
    if (line.startsWith('dir ')) dir = line.slice(4);
  }
});
process.stdin.on('end', () => {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch {} }
  if (dir) require('node:fs').rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});`;

function startWatchdog(dir: string): { watch(pid: number): void; gone(pid: number): void; disarm(): void } {
  const child = spawn(process.execPath, ['-e', WATCHDOG], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.on('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  child.unref();
  (child.stdin as unknown as Socket).unref();
  child.stdin!.write(`dir ${dir}\n`);
  return {
    watch: (pid) => child.stdin!.write(`pid ${pid}\n`),
    // an exited pid may be reused by another process: forget it
    gone: (pid) => {
      if (child.stdin!.writable) child.stdin!.write(`gone ${pid}\n`);
    },
    disarm: () => child.stdin!.end('disarm\n'),
  };
}

/** Outside Jest, a normal exit also kills what was not stopped. */
const running = new Set<() => void>();
process.on('exit', () => {
  for (const kill of running) kill();
});

async function pickBasePort(n: number, requested?: number): Promise<number> {
  const allFree = async (base: number) => {
    for (let p = base; p < base + n; p++) {
      if (RESERVED.has(p) || RESERVED.has(p + BUS_OFFSET) || p + BUS_OFFSET > 65535) return false;
      if (!(await isPortFree(p)) || !(await isPortFree(p + BUS_OFFSET))) return false;
    }
    return true;
  };
  if (requested !== undefined) {
    if (!(await allFree(requested)))
      throw new Error(`ports ${requested}-${requested + n - 1} (or their bus ports +${BUS_OFFSET}) are not free`);
    return requested;
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (20_000 - n));
    if (await allFree(base)) return base;
  }
  throw new Error(`no ${n} consecutive free ports (with free bus ports) found in 20000-40000`);
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const mastersWanted = opts.masters ?? 3;
  const replicasPerMaster = opts.replicasPerMaster ?? 1;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (mastersWanted < 3) throw new Error('redis-cli --cluster create needs at least 3 masters');
  const n = mastersWanted * (1 + replicasPerMaster);
  const base = await pickBasePort(n, opts.basePort);
  const ports = Array.from({ length: n }, (_, i) => base + i);
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-redis-cluster-'));
  const procs = new Map<number, ChildProcess>();
  const watchdog = startWatchdog(dir);
  const killAllNow = () => {
    for (const p of procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  running.add(killAllNow);

  const alive = (port: number) => {
    const p = procs.get(port);
    return !!p && p.exitCode === null && p.signalCode === null;
  };
  const livePorts = () => ports.filter(alive);
  const logTail = (port: number) => {
    const file = join(dir, `redis-${port}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-8).join('\n') : '(no log)';
  };

  const spawnNode = async (port: number) => {
    // biome-ignore format: one option per line
    const args = [
      '--port', String(port),
      '--bind', HOST,
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000',
      // a replica's full sync starts at once instead of after 5 s of waiting for other replicas
      '--repl-diskless-sync-delay', '0',
      '--appendonly', 'no',
      '--save', '',
      '--dir', dir,
      '--logfile', join(dir, `redis-${port}.log`),
    ];
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    proc.on('error', () => undefined);
    if (!proc.pid) throw new Error('could not start redis-server (is it installed? apt-get install -y redis-server)');
    procs.set(port, proc);
    const pid = proc.pid;
    watchdog.watch(pid);
    proc.once('exit', () => watchdog.gone(pid));
    await poll(
      `redis-server on ${port} to answer PING`,
      async () => {
        if (!alive(port)) throw new Error(`redis-server on ${port} exited (${proc.exitCode ?? proc.signalCode}):\n${logTail(port)}`);
        return (await onNode(port, (r) => r.ping())) === 'PONG';
      },
      10_000,
      25,
    );
  };

  const clusterNodes = async (port: number) => parseNodes(String(await onNode(port, (r) => r.call('CLUSTER', 'NODES'))));
  const clusterInfo = async (port: number) => fields(String(await onNode(port, (r) => r.call('CLUSTER', 'INFO'))));

  /** The first live node's view of the cluster. */
  const view = async (): Promise<NodeLine[]> => {
    let last: unknown;
    for (const port of livePorts()) {
      try {
        return await clusterNodes(port);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no live cluster node answers CLUSTER NODES${last ? `: ${(last as Error).message}` : ''}`);
  };

  /**
   * Every live node: cluster_state:ok with all slots assigned and ok; in its CLUSTER NODES every live node
   * known, connected and not failing, every live master serving slots (16384 in all), every replica's
   * master alive, the `failed` ports flagged fail without slots; the same roles in every view; every
   * live replica's link to its master up (INFO replication).
   */
  const healthy = async (failed: number[] = []) => {
    const live = livePorts();
    let roles: string | undefined;
    for (const port of live) {
      const info = await clusterInfo(port);
      if (info.cluster_state !== 'ok' || Number(info.cluster_slots_assigned) !== SLOTS || Number(info.cluster_slots_ok) !== SLOTS)
        return false;
      const nodes = await clusterNodes(port);
      const byId = new Map(nodes.map((l) => [l.id, l]));
      const liveLines: NodeLine[] = [];
      for (const other of live) {
        const line = nodes.find((l) => l.port === other);
        if (!line || ['fail', 'fail?', 'handshake', 'noaddr'].some((f) => line.flags.has(f))) return false;
        if (line.flags.has('master') && line.slots.length === 0) return false; // a restarted master not yet turned replica
        if (line.flags.has('slave') && !live.includes(byId.get(line.masterId ?? '')?.port ?? -1)) return false;
        liveLines.push(line);
      }
      for (const dead of failed) {
        const line = nodes.find((l) => l.port === dead);
        if (line && (!line.flags.has('fail') || line.slots.length > 0)) return false;
      }
      if (liveLines.filter((l) => l.flags.has('master')).reduce((n, l) => n + slotCount(l.slots), 0) !== SLOTS) return false;
      const these = liveLines
        .map((l) => `${l.port}:${l.flags.has('master') ? 'master' : byId.get(l.masterId ?? '')?.port}`)
        .sort()
        .join(',');
      if (roles !== undefined && these !== roles) return false;
      roles = these;
      const replication = fields(await onNode(port, (r) => r.info('replication')));
      if (replication.role === 'slave' && replication.master_link_status !== 'up') return false;
    }
    return true;
  };

  const masters = async (): Promise<ClusterMaster[]> => {
    const nodes = await view();
    const live = (l: NodeLine) => !l.flags.has('fail') && alive(l.port);
    return nodes
      .filter((l) => l.flags.has('master') && live(l) && l.slots.length > 0)
      .map((l) => ({
        port: l.port,
        id: l.id,
        slots: l.slots.sort((a, b) => a[0] - b[0]),
        replicas: nodes
          .filter((r) => r.masterId === l.id && live(r))
          .map((r) => r.port)
          .sort((a, b) => a - b),
      }))
      .sort((a, b) => a.slots[0][0] - b.slots[0][0]);
  };

  const killed = new Map<number, KilledMaster>();
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      [...procs.values()].map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = once(p, 'exit');
        p.kill('SIGKILL');
        await exited;
      }),
    );
    running.delete(killAllNow);
    rmSync(dir, { recursive: true, force: true });
    watchdog.disarm();
  };

  const startup = { spawnMs: 0, createMs: 0, settleMs: 0 };
  try {
    const t0 = Date.now();
    await Promise.all(ports.map(spawnNode));
    startup.spawnMs = Date.now() - t0;
    await promisify(execFile)(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'],
      { timeout: Math.max(1000, timeoutMs - (Date.now() - t0)) },
    ).catch((err: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
    });
    startup.createMs = Date.now() - t0 - startup.spawnMs;
    await poll(
      'the cluster to be ok on every node, all slots assigned, every replica linked',
      () => healthy(),
      Math.max(1000, timeoutMs - (Date.now() - t0)),
    );
    startup.settleMs = Date.now() - t0 - startup.spawnMs - startup.createMs;
    const ms = await masters();
    if (ms.length !== mastersWanted || ms.some((m) => m.replicas.length !== replicasPerMaster))
      throw new Error(`unexpected topology: ${JSON.stringify(ms.map((m) => ({ port: m.port, replicas: m.replicas })))}`);
  } catch (err) {
    const tails = ports.map((p) => `--- ${p}\n${logTail(p)}`).join('\n');
    await stop();
    throw new Error(`${(err as Error).message}\n${tails}`);
  }

  const nodes = ports.map((port) => ({ host: HOST, port }));
  return {
    nodes,
    env: { REDIS_CLUSTER_NODES: nodes.map((a) => `${a.host}:${a.port}`).join(',') },
    dir,
    startup,
    masters,

    async killMaster(port?: number): Promise<KilledMaster> {
      const ms = await masters();
      const master = port === undefined ? ms[0] : ms.find((m) => m.port === port);
      if (!master) throw new Error(`${port} is not a live master (masters: ${ms.map((m) => m.port).join(', ')})`);
      if (master.replicas.length === 0) throw new Error(`master ${master.port} has no replica to take over`);
      // The replica with the largest replication offset wins the election (its rank is 0).
      const offsets = await Promise.all(
        master.replicas.map(async (r) => Number(fields(await onNode(r, (c) => c.info('replication'))).slave_repl_offset ?? -1)),
      );
      const replica = master.replicas[offsets.indexOf(Math.max(...offsets))];
      const proc = procs.get(master.port)!;
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
      const k = { port: master.port, replica, slots: master.slots, at: Date.now() };
      killed.set(master.port, k);
      return k;
    },

    async waitForFailover(killedPort: number, timeout = 30_000): Promise<Failover> {
      if (alive(killedPort)) throw new Error(`${killedPort} is still running`);
      const k = killed.get(killedPort);
      const start = k?.at ?? Date.now();
      const promoted = await poll(
        `a replica to take over the slots of ${killedPort}`,
        async () => {
          if (!(await healthy([killedPort]))) return undefined;
          if (!k) return -1;
          const owner = (await masters()).find((m) => m.slots.some(([a, b]) => a <= k.slots[0][0] && k.slots[0][0] <= b));
          return owner && owner.port !== killedPort ? owner.port : undefined;
        },
        timeout,
      );
      return { promoted, ms: Date.now() - start };
    },

    async restartNode(port: number, timeout = 30_000): Promise<void> {
      if (!ports.includes(port)) throw new Error(`${port} is not a node of this cluster`);
      if (alive(port)) throw new Error(`${port} is still running`);
      await spawnNode(port);
      killed.delete(port);
      await poll(`${port} to rejoin the cluster`, () => healthy(), timeout);
    },

    async keysPerMaster(pattern = '*'): Promise<Record<number, number>> {
      const out: Record<number, number> = {};
      for (const m of await masters()) {
        out[m.port] = await onNode(m.port, async (r) => {
          let cursor = '0';
          let count = 0;
          do {
            const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            count += keys.length;
            cursor = next;
          } while (cursor !== '0');
          return count;
        });
      }
      return out;
    },

    pids(): Record<number, number> {
      return Object.fromEntries(livePorts().map((p) => [p, procs.get(p)!.pid!]));
    },

    stop,
  };
}
