// `npm start`: runs the whole service on this machine from a fresh clone.
//
//  1. installs dependencies when node_modules is missing;
//  2. finds PostgreSQL (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/aiaas) and Redis
//     (REDIS_URL, default redis://127.0.0.1:6379, or a Redis Cluster: REDIS_CLUSTER_NODES), each checked with a real query;
//  3. generates the Prisma client, builds dist/, applies the migrations (creating the database);
//  4. starts the API (PORT, default 3000) and one worker, passes their JSON logs through, and
//     prints a banner with the URL, the docs URL and how to use the admin key;
//  5. on Ctrl-C / SIGTERM / SIGHUP stops the API and the worker (SIGTERM, then SIGKILL after a
//     deadline), then the private servers it started, and exits 0. If the API, the worker or a
//     private server dies on its own, it stops the rest and exits 1.
//
// Private servers: when DATABASE_URL (or REDIS_URL) is NOT set and nothing answers at the default
// address, a private PostgreSQL (initdb + pg_ctl, data in .data/postgres, log .data/postgres.log)
// or Redis (redis-server child, append-only file in .data/redis) is started on 127.0.0.1 — on the
// default port when free, else 54329 / 63799. The PostgreSQL data survives restarts (so does the
// admin key); delete .data/ to start afresh. When a URL was set explicitly and does not answer, or
// when a server answers but refuses (wrong password...), nothing is started: the script stops and
// says so, since quietly using another database than the one asked for would be worse.
// As root, initdb/postgres refuse to run, so they run as the `postgres` user (runuser, else su).
//
// AIAAS_FORCE_PRIVATE_SERVICES=1 skips the shared servers altogether and always starts the private
// ones (DATABASE_URL/REDIS_URL are then ignored): handy to try a clean install next to a running
// PostgreSQL/Redis, and how the private path is tested.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { build, ensureDependencies, generatePrismaClient, migrateDatabase, root, step } from './lib.mjs';

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/aiaas';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const FORCE_PRIVATE = process.env.AIAAS_FORCE_PRIVATE_SERVICES === '1';
const DATA_DIR = join(root, '.data');
const PG_DATA = join(DATA_DIR, 'postgres');
const PG_LOG = join(DATA_DIR, 'postgres.log');
const REDIS_DATA = join(DATA_DIR, 'redis');
const INSTALL_HINT = 'apt-get install -y postgresql redis-server';
const STOP_DEADLINE_MS = 15_000; // graceful shutdown budget per process before SIGKILL
const READY_TIMEOUT_MS = 90_000; // API/worker must print their ready line within this

class StartError extends Error {} // a failure whose message says all; printed without a stack

const children = { api: null, worker: null, redis: null }; // processes we started and must stop
let privatePostgres = null; // { bin, port } when we started PostgreSQL with pg_ctl
let stopping = false;

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // npm forwards the terminal's SIGINT as well, so a second signal just joins the shutdown in progress.
  process.on(signal, () => void shutdown(0, `${signal} received`));
}
// `npm start` runs us under `sh -c`; a SIGTERM sent to npm alone kills that shell and orphans us:
// treat losing the parent like a signal, or the API and worker would keep running unseen.
const parentPid = process.ppid;
setInterval(() => process.ppid !== parentPid && void shutdown(0, 'parent process exited'), 500).unref();
// Last resort if this script dies abruptly: don't leave the API/worker/Redis running (exit handlers are sync).
process.on('exit', () => {
  for (const child of Object.values(children)) if (child && isRunning(child)) tryKill(-child.pid, 'SIGKILL');
});

try {
  await main();
} catch (err) {
  // A failed step (npm ci, prisma, build, migrate) has printed its own error above: no stack needed.
  const stepFailed = err?.status !== undefined || err?.signal;
  const message =
    err instanceof StartError ? err.message : stepFailed ? `${err.message.split('\n')[0]} (its output is above)` : (err?.stack ?? err);
  console.error(`\n\x1b[31mnpm start failed:\x1b[0m ${message}`);
  await shutdown(1);
}

async function main() {
  ensureDependencies();
  if (FORCE_PRIVATE && (process.env.DATABASE_URL || process.env.REDIS_URL)) {
    step('AIAAS_FORCE_PRIVATE_SERVICES=1: ignoring DATABASE_URL/REDIS_URL, starting private servers');
  }
  const port = process.env.PORT ?? '3000';
  await assertPortFree(Number(port), 'PORT', 'the API');
  const databaseUrl = await resolvePostgres();
  const redisUrl = await resolveRedis();
  if (stopping) return;

  step('generating the Prisma client');
  generatePrismaClient();
  step('building dist/ (SWC)');
  build();
  const env = { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, PORT: port };
  // Private servers replace a configured cluster too.
  if (FORCE_PRIVATE) delete env.REDIS_CLUSTER_NODES;
  step(`migrating ${redact(databaseUrl)}`);
  migrateDatabase(env);
  if (stopping) return;

  step('starting the API and one worker');
  const [api] = await Promise.all([
    startNode('api', 'dist/apps/api/src/main.js', env, 'api.listening'),
    startNode('worker', 'dist/apps/worker/src/main.js', env, 'worker.ready'),
  ]);
  if (stopping) return;
  for (const name of ['api', 'worker']) if (!isRunning(children[name])) throw new StartError(`${name} exited right after start`);
  // From here on, either of them exiting is a crash (during start the rejection above reports it).
  watchUnexpectedExit('api', children.api);
  watchUnexpectedExit('worker', children.worker);
  printBanner(api, databaseUrl, redisUrl);
}

// ---------------------------------------------------------------- PostgreSQL

async function resolvePostgres() {
  const explicit = FORCE_PRIVATE ? undefined : process.env.DATABASE_URL;
  const url = explicit ?? DEFAULT_DATABASE_URL;
  if (!FORCE_PRIVATE) {
    step(`checking PostgreSQL at ${redact(url)}`);
    const problem = await checkPostgres(url);
    if (!problem) return url;
    if (explicit || problem.answered) {
      throw new StartError(
        `PostgreSQL at ${redact(url)} ${problem.answered ? 'answered but refused' : 'does not answer'}: ${problem.message}\n` +
          (explicit
            ? `  ${problem.answered ? 'Fix DATABASE_URL' : 'Start that server or fix DATABASE_URL'}; or unset DATABASE_URL to let npm start run a private PostgreSQL under .data/.`
            : `  Set DATABASE_URL to a PostgreSQL you can use (e.g. DATABASE_URL=postgresql://user:password@host:5432/aiaas), or AIAAS_FORCE_PRIVATE_SERVICES=1 for a private one.`),
      );
    }
  }
  return startPrivatePostgres(new URL(DEFAULT_DATABASE_URL).pathname.slice(1));
}

/** null when the server answers a query; else { answered, message }. */
async function checkPostgres(url) {
  const { hostname, port } = new URL(url);
  const tcp = await tcpProbe(hostname, Number(port || 5432));
  if (tcp) return { answered: false, message: tcp };
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    // The database itself may not exist yet: the migrator creates it, so the server is fine.
    if (err.code === '3D000') return null;
    return { answered: true, message: err.message };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function startPrivatePostgres(dbName) {
  const bin = findPostgresBin();
  if (!bin) {
    throw new StartError(
      'no PostgreSQL answers and no PostgreSQL server binaries (initdb, pg_ctl) were found.\n' +
        `  Install them (Debian/Ubuntu: ${INSTALL_HINT}) or set DATABASE_URL=postgresql://user:password@host:5432/aiaas (and REDIS_URL=redis://host:6379).`,
    );
  }
  const asUser = postgresUserRunner();
  mkdirSync(PG_DATA, { recursive: true });
  closeSync(openSync(PG_LOG, 'a'));
  if (asUser.chown) {
    // postgres insists on owning its data directory (mode 0700) and pg_ctl writes the log as that user.
    execFileSync('chown', ['-R', 'postgres:postgres', PG_DATA, PG_LOG]);
    const probe = spawnSync(...asUser.command('test', ['-w', PG_DATA]));
    if (probe.status !== 0) {
      throw new StartError(
        `the postgres user cannot reach ${PG_DATA} (a parent directory is not accessible to it).\n` +
          '  Run npm start as a regular user from a directory it owns, or set DATABASE_URL to a running PostgreSQL.',
      );
    }
  }
  chmodSync(PG_DATA, 0o700);

  if (!existsSync(join(PG_DATA, 'PG_VERSION'))) {
    step(`initialising a private PostgreSQL in ${PG_DATA}`);
    // The C locale always exists, so initdb can't trip over the machine's locale settings.
    run(asUser, join(bin, 'initdb'), ['-D', PG_DATA, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
  }

  let port = runningPostgresPort();
  if (port) {
    step(`reusing the private PostgreSQL already running on port ${port} (left by an earlier start)`);
  } else {
    port = (await isPortFree(5432)) ? 5432 : await firstFreePort(54329);
    step(`starting a private PostgreSQL on 127.0.0.1:${port} (log ${PG_LOG})`);
    run(asUser, join(bin, 'pg_ctl'), [
      '-D',
      PG_DATA,
      '-o',
      `-p ${port} -k /tmp -c listen_addresses=127.0.0.1`,
      '-l',
      PG_LOG,
      '-w',
      '-t',
      '60',
      'start',
    ]);
  }
  privatePostgres = { bin, port, asUser };
  const url = `postgresql://postgres@127.0.0.1:${port}/${dbName}`;
  const problem = await checkPostgres(url);
  if (problem) throw new StartError(`the private PostgreSQL on port ${port} does not work: ${problem.message} (see ${PG_LOG})`);
  return url;
}

/** The directory holding initdb, pg_ctl and postgres: from PATH, else the newest /usr/lib/postgresql/N/bin. */
function findPostgresBin() {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const initdb = join(dir, 'initdb');
    // Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin) so pg_ctl and postgres match.
    if (dir && existsSync(initdb)) {
      const real = join(realpathSync(initdb), '..');
      if (existsSync(join(real, 'pg_ctl')) && existsSync(join(real, 'postgres'))) return real;
    }
  }
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => b - a)
    : [];
  for (const v of versions) {
    const dir = join(base, v, 'bin');
    if (['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(dir, b)))) return dir;
  }
  return null;
}

/** How to run the PostgreSQL tools: directly, or as the postgres user when we are root. */
function postgresUserRunner() {
  if (process.getuid?.() !== 0) return { chown: false, command: (file, args) => [file, args] };
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) {
    throw new StartError(
      'running as root, and PostgreSQL refuses to run as root, but there is no `postgres` user to run it as.\n' +
        `  Run npm start as a regular user, or create the user (useradd --system --user-group postgres; ${INSTALL_HINT} does it), or set DATABASE_URL.`,
    );
  }
  if (existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser')) {
    return { chown: true, command: (file, args) => ['runuser', ['-u', 'postgres', '--', file, ...args]] };
  }
  const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  return { chown: true, command: (file, args) => ['su', ['postgres', '-s', '/bin/sh', '-c', [file, ...args].map(quote).join(' ')]] };
}

/** Port of the private PostgreSQL when one is still running on .data/postgres, else null. */
function runningPostgresPort() {
  const pidFile = join(PG_DATA, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(pid), 0); // throws when no such process (a stale pid file after a crash)
    return Number(port);
  } catch (err) {
    return err.code === 'EPERM' ? Number(port) : null; // EPERM: it exists, owned by postgres
  }
}

function stopPrivatePostgres() {
  if (!privatePostgres) return;
  const { bin, asUser } = privatePostgres;
  privatePostgres = null;
  step('stopping the private PostgreSQL');
  try {
    run(asUser, join(bin, 'pg_ctl'), ['-D', PG_DATA, '-m', 'fast', '-w', '-t', '60', 'stop']);
  } catch (err) {
    console.error(`pg_ctl stop failed: ${err.message}`);
  }
}

// ---------------------------------------------------------------- Redis

async function resolveRedis() {
  // A Redis Cluster (REDIS_CLUSTER_NODES, or a redis-cluster:// REDIS_URL) is used as given: never a private one instead.
  const cluster =
    process.env.REDIS_CLUSTER_NODES ??
    (process.env.REDIS_URL?.startsWith('redis-cluster://') ? process.env.REDIS_URL.slice(16) : undefined);
  if (cluster && !FORCE_PRIVATE) {
    step(`checking the Redis Cluster at ${cluster}`);
    const problem = await checkRedisCluster(cluster);
    if (problem)
      throw new StartError(
        `The Redis Cluster at ${cluster} does not answer: ${problem}\n  Start it or fix REDIS_CLUSTER_NODES / REDIS_URL.`,
      );
    return process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
  }
  const explicit = FORCE_PRIVATE ? undefined : process.env.REDIS_URL;
  const url = explicit ?? DEFAULT_REDIS_URL;
  if (!FORCE_PRIVATE) {
    step(`checking Redis at ${redact(url)}`);
    const problem = await checkRedis(url);
    if (!problem) return url;
    if (explicit || problem.answered) {
      throw new StartError(
        `Redis at ${redact(url)} ${problem.answered ? 'answered but refused' : 'does not answer'}: ${problem.message}\n` +
          (explicit
            ? `  ${problem.answered ? 'Fix REDIS_URL' : 'Start that server or fix REDIS_URL'}; or unset REDIS_URL to let npm start run a private Redis under .data/.`
            : '  Set REDIS_URL to a Redis you can use (e.g. REDIS_URL=redis://:password@host:6379), or AIAAS_FORCE_PRIVATE_SERVICES=1 for a private one.'),
      );
    }
  }
  return startPrivateRedis();
}

/** PING through an ioredis Cluster on the seed nodes (`h:p,h:p`); the error message, or null. */
async function checkRedisCluster(list) {
  const { Cluster } = await import('ioredis');
  const nodes = list
    .replace(/\/$/, '')
    .split(',')
    .map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) }));
  const cluster = new Cluster(nodes, { lazyConnect: true, clusterRetryStrategy: () => null, redisOptions: { connectTimeout: 5000 } });
  cluster.on('error', () => undefined);
  try {
    await cluster.connect();
    return (await cluster.ping()) === 'PONG' ? null : 'PING did not answer PONG';
  } catch (err) {
    return err.message;
  } finally {
    cluster.disconnect();
  }
}

async function checkRedis(url) {
  const { hostname, port } = new URL(url);
  const tcp = await tcpProbe(hostname, Number(port || 6379));
  if (tcp) return { answered: false, message: tcp };
  const { Redis } = await import('ioredis');
  // One attempt, no reconnects: we only want to know whether PING works right now.
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined); // reported through the rejected promise below
  try {
    await redis.connect();
    const pong = await redis.ping();
    return pong === 'PONG' ? null : { answered: true, message: `PING returned ${pong}` };
  } catch (err) {
    return { answered: true, message: err.message };
  } finally {
    redis.disconnect();
  }
}

async function startPrivateRedis() {
  const server = which('redis-server');
  if (!server) {
    throw new StartError(
      'no Redis answers and redis-server was not found.\n' +
        `  Install it (Debian/Ubuntu: ${INSTALL_HINT}) or set REDIS_URL=redis://host:6379.`,
    );
  }
  const port = (await isPortFree(6379)) ? 6379 : await firstFreePort(63799);
  mkdirSync(REDIS_DATA, { recursive: true });
  const log = join(DATA_DIR, 'redis.log');
  step(`starting a private Redis on 127.0.0.1:${port} (data ${REDIS_DATA}, log ${log})`);
  const out = openSync(log, 'a');
  // Own process group (detached): the terminal's Ctrl-C must not stop Redis before the API and worker.
  const child = spawn(
    server,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', REDIS_DATA, '--appendonly', 'yes', '--daemonize', 'no'],
    {
      cwd: root,
      stdio: ['ignore', out, out],
      detached: true,
    },
  );
  closeSync(out);
  children.redis = child;
  watchUnexpectedExit('redis', child);
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (!isRunning(child)) throw new StartError(`the private redis-server exited at start (see ${log})`);
    if (!(await checkRedis(url))) return url;
    if (Date.now() > deadline) throw new StartError(`the private Redis on port ${port} did not answer within 20 s (see ${log})`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------- API and worker

/** Starts `node file`, passes its output through, resolves with its ready line (parsed). */
function startNode(name, file, env, readyEvent) {
  // Own process group (detached): on Ctrl-C only this script signals it, once, in the right order.
  const child = spawn(process.execPath, [join(root, file)], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children[name] = child;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new StartError(`${name} did not become ready within ${READY_TIMEOUT_MS / 1000} s`)),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      if (line.startsWith('{') && line.includes(`"${readyEvent}"`)) {
        try {
          const event = JSON.parse(line);
          if (event.event === readyEvent) {
            clearTimeout(timer);
            return resolve(event);
          }
        } catch {
          // not JSON after all: print it like any other line
        }
      }
      process.stdout.write(`${line}\n`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new StartError(`${name} exited during start (${signal ?? `code ${code}`}); its output is above`));
    });
  });
}

function printBanner(api, databaseUrl, redisUrl) {
  const bold = (s) => `\x1b[1m${s}\x1b[0m`;
  const green = (s) => `\x1b[32m${s}\x1b[0m`;
  const lines = [
    '',
    green('aiaas is running'),
    `  API        ${bold(api.url)}`,
    `  Docs       ${api.docs}`,
    `  Dashboard  ${api.url}/dashboard`,
  ];
  let key = '$KEY';
  if (api.admin_key_source === 'generated' && api.admin_key) {
    key = api.admin_key;
    lines.push(
      `  Admin key  ${bold(api.admin_key)}`,
      `             ${bold('shown once, store it now')} (it is stored hashed and cannot be shown again)`,
    );
  } else if (api.admin_key_source === 'from-env') {
    key = '$ADMIN_API_KEY';
    lines.push('  Admin key  ADMIN_API_KEY from the environment is in use');
  } else {
    lines.push(
      '  Admin key  an admin key already exists in this database: use ADMIN_API_KEY, or the key',
      '             printed on the first start (set KEY to it for the example below)',
    );
  }
  lines.push(
    `  Try        curl -H "Authorization: Bearer ${key}" ${api.url}/v1/admin/tenants`,
    `  Services   PostgreSQL ${redact(databaseUrl)}${privatePostgres ? ' (private, .data/postgres)' : ''}, Redis ${process.env.REDIS_CLUSTER_NODES && !FORCE_PRIVATE ? `Cluster ${process.env.REDIS_CLUSTER_NODES}` : redact(redisUrl)}${children.redis ? ' (private, .data/redis)' : ''}`,
    '  Ctrl-C stops everything.',
    '',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------- shutdown

function watchUnexpectedExit(name, child) {
  child.on('exit', (code, signal) => {
    if (stopping) return;
    console.error(`\n\x1b[31m${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the rest\x1b[0m`);
    void shutdown(1);
  });
}

async function shutdown(code, reason) {
  if (stopping) return;
  stopping = true;
  const anything = privatePostgres || Object.values(children).some((c) => c && isRunning(c));
  if (anything) step(reason ? `${reason}: stopping` : 'stopping');
  // API and worker first (they still need PostgreSQL and Redis to finish cleanly), then the servers.
  await Promise.all([stopChild('api', children.api), stopChild('worker', children.worker)]);
  await stopChild('redis', children.redis);
  stopPrivatePostgres();
  if (anything) step('stopped');
  process.exit(code);
}

/** SIGTERM, wait up to the deadline, then SIGKILL the whole process group (its own children too). */
async function stopChild(name, child) {
  if (!child || !isRunning(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  tryKill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    console.error(`${name} did not stop within ${STOP_DEADLINE_MS / 1000} s: SIGKILL`);
    tryKill(-child.pid, 'SIGKILL');
  }, STOP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- small helpers

function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

function tryKill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Runs a PostgreSQL tool (as the postgres user when root); on failure shows its output. */
function run(asUser, file, args) {
  const [cmd, cmdArgs] = asUser.command(file, args);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new StartError(
      `${file.split('/').pop()} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout ?? ''}${r.stderr ?? ''}`.trimEnd(),
    );
  }
}

function which(name) {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return null;
}

/** null when something accepts TCP connections at host:port, else why not. */
function tcpProbe(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(3000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`no answer from ${host}:${port} within 3 s`);
    });
    socket.once('error', (err) => resolve(`${err.code ?? err.message} at ${host}:${port}`));
  });
}

function isPortFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function firstFreePort(from) {
  for (let port = from; port < from + 100; port++) if (await isPortFree(port)) return port;
  throw new StartError(`no free port between ${from} and ${from + 99}`);
}

async function assertPortFree(port, variable, what) {
  // The API listens on HOST (default 0.0.0.0): check the wildcard address, which also catches 127.0.0.1.
  if (port !== 0 && !(await isPortFree(port, '0.0.0.0'))) {
    throw new StartError(`port ${port} is already in use; set ${variable} to a free port for ${what} (e.g. ${variable}=3001 npm start)`);
  }
}

/** The URL without its password, for printing. */
function redact(url) {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
