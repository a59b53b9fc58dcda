// Shared pieces of `npm run bench`: a private database + Redis prefix + admin key per run, real
// processes started from dist/ (or from bench/), an autocannon runner, medians, and the report
// writer (bench/report.md + bench/report.json, one table per area). Plain Node, no build step.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { migrateDatabase, root, step } from '../scripts/lib.mjs';

export { root, step };

/** A BENCH_* setting: `fallback` when unset, else a number ≥ `min` (an integer when asked), or a clear error. */
export function envNumber(env, name, fallback, min, integer = false) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min} (got '${raw}')`);
  }
  return n;
}

/** Seconds per measured run (BENCH_DURATION), warm-up seconds (BENCH_WARMUP), connections (BENCH_CONNECTIONS). */
export function benchSettings(env = process.env) {
  const num = (name, fallback, min) => envNumber(env, name, fallback, min);
  return {
    duration: num('BENCH_DURATION', 10, 1),
    warmup: num('BENCH_WARMUP', 2, 0),
    connections: num('BENCH_CONNECTIONS', 50, 1),
    rounds: num('BENCH_ROUNDS', 3, 1),
    profile: env.BENCH_PROFILE === '1',
  };
}

/**
 * Everything the API needs for a run of its own: database `aiaas_bench_<id>` (created and migrated
 * here), Redis prefix `bench-<id>`, admin key `adm_bench<32 hex>`.
 */
export function prepareEnvironment() {
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbUrl = new URL(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/aiaas');
  dbUrl.pathname = `/aiaas_bench_${runId}`;
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench-${runId}`,
    ADMIN_API_KEY: `adm_bench${randomBytes(16).toString('hex')}`,
    WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'warn',
    NODE_OPTIONS: '',
  };
  step(`bench database ${dbUrl.pathname.slice(1)}, Redis prefix ${env.REDIS_PREFIX}`);
  migrateDatabase(env);
  return { runId, env };
}

/** Drops the run's database and deletes its Redis keys (`{<prefix>}:...`). */
export async function cleanUpEnvironment(env) {
  const errors = [];
  try {
    const { dropDatabase } = await import(join(root, 'dist', 'libs', 'db', 'src', 'migrate.js'));
    await dropDatabase(env.DATABASE_URL);
  } catch (err) {
    errors.push(`database: ${err.message}`);
  }
  try {
    const { Redis } = await import('ioredis');
    const redis = new Redis(env.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${env.REDIS_PREFIX}:*`, 'COUNT', 1000);
      if (keys.length) deleted += await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
    step(`dropped ${new URL(env.DATABASE_URL).pathname.slice(1)}, deleted ${deleted} Redis key(s)`);
  } catch (err) {
    errors.push(`redis: ${err.message}`);
  }
  if (errors.length) throw new Error(errors.join('; '));
}

const running = new Set();

/**
 * Starts `node <entry>` and waits for the JSON line `{"event": readyEvent, ...}` on stdout.
 * Returns { proc, ready, output, stop() }. Output is kept (last 200 lines) for error messages.
 */
export async function startProcess(entry, readyEvent, { env = process.env, nodeArgs = [], timeoutMs = 30_000 } = {}) {
  const proc = spawn(process.execPath, [...nodeArgs, join(root, entry)], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  const keep = (line) => {
    output.push(line);
    if (output.length > 200) output.shift();
  };
  let exited = false;
  proc.on('exit', () => {
    exited = true;
    running.delete(handle);
  });
  createInterface({ input: proc.stderr }).on('line', keep);
  const lines = createInterface({ input: proc.stdout });
  const handle = {
    proc,
    output,
    ready: undefined,
    async stop(signal = 'SIGTERM') {
      if (exited) return proc.exitCode;
      const gone = once(proc, 'exit');
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const [code] = await gone;
      clearTimeout(timer);
      return code;
    },
  };
  running.add(handle);
  handle.ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} not ready in ${timeoutMs} ms:\n${output.join('\n')}`)), timeoutMs);
    lines.on('line', (line) => {
      keep(line);
      if (!line.startsWith('{')) return;
      try {
        const msg = JSON.parse(line);
        if (msg.event === readyEvent) {
          clearTimeout(timer);
          resolve(msg);
        }
      } catch {
        // a log line, not ours
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before it was ready:\n${output.join('\n')}`));
    });
  });
  return handle;
}

/** Stops every process this harness started and that is still running. */
export async function stopAll() {
  await Promise.all([...running].map((p) => p.stop().catch(() => undefined)));
}

/** The real API (dist/apps/api/src/main.js) on a free loopback port. */
export async function startApi(env, { profileDir } = {}) {
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const p = await startProcess('dist/apps/api/src/main.js', 'api.listening', {
    env: { ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    nodeArgs,
  });
  return { ...p, url: p.ready.url };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One call to the API. Unlike requestJson it returns any status: 200 and 202 mean different things under Prefer: wait. */
export async function call(url, { method = 'GET', token, body, headers = {} } = {}) {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, text };
}

/** The columns of a table of figures beside their baselines (jobs, inference, webhooks). */
/**
 * A bench tenant on the enterprise plan (limits out of the way, `quotas` added) with one key: `t`
 * calls the API as it, `must` checks a status and answers the body.
 */
export async function benchTenant(api, env, name, quotas = {}) {
  const admin = env.ADMIN_API_KEY;
  const tenant = await requestJson(`${api.url}/v1/admin/tenants`, {
    method: 'POST',
    token: admin,
    body: { name, plan: 'enterprise', quotas: { requests_per_minute: 100_000_000, monthly_compute_seconds: 100_000_000, ...quotas } },
  });
  const secret = (
    await requestJson(`${api.url}/v1/admin/tenants/${tenant.body.id}/api-keys`, { method: 'POST', token: admin, body: { name: 'bench' } })
  ).body.secret;
  const t = (method, path, body, headers) => call(`${api.url}${path}`, { method, token: secret, body, headers });
  const must = (r, status, what) => {
    if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
    return r.body;
  };
  return { id: tenant.body.id, secret, t, must };
}

export const RATIO_COLUMNS = [
  { key: 'figure', label: 'figure', align: 'left' },
  { key: 'measured', label: 'measured' },
  { key: 'baseline', label: 'baseline (same run)' },
  { key: 'ratio', label: 'ratio' },
  { key: 'target', label: 'target' },
  { key: 'result', label: 'result' },
];

/** A JSON request to a running service; throws on a non-2xx answer. */
export async function requestJson(url, { method = 'GET', token, body } = {}) {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} → ${res.status}: ${text}`);
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

/**
 * One autocannon run, in this process (so autocannon shares the machine's cores with whatever it
 * measures). `method` and `body` (a string, sent as-is on every request) default to a GET without
 * a body. Returns the figures kept in the report.
 */
export async function loadTest({ url, headers = {}, duration, connections, label, serverPid, method = 'GET', body }) {
  const before = cpuSnapshot();
  const result = await autocannon({ url, headers, duration, connections, method, body });
  const cpu = cpuUsage(before, cpuSnapshot(), { server: serverPid });
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]));
  return {
    label,
    duration_s: result.duration,
    requests: result.requests.total,
    rps: round(result.requests.total / result.duration, 0),
    rps_avg_per_second: round(result.requests.average, 0),
    latency_ms: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      avg: round(result.latency.average, 2),
      max: result.latency.max,
    },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    status_codes: statusCodes,
    cpu,
    started_at: new Date(result.start).toISOString(),
  };
}

/**
 * CPU time of every process on the machine (Linux /proc), so that a run can say who used the
 * cores while it ran: the measured server, the load generator (this process), PostgreSQL, Redis,
 * and everything else (another build or test run on a shared machine makes figures meaningless).
 */
export function cpuSnapshot() {
  const procs = new Map();
  let total = null;
  try {
    const [cpu] = readFileSync('/proc/stat', 'utf8').split('\n');
    const f = cpu.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    total = { busy: f[0] + f[1] + f[2] + f[5] + f[6] + f[7], irq: f[5] + f[6], steal: f[7], all: f.slice(0, 8).reduce((a, b) => a + b, 0) };
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const stat = readStat(pid);
      if (stat) procs.set(Number(pid), stat);
    }
  } catch {
    return null; // not Linux
  }
  return { at: process.hrtime.bigint(), total, procs };
}

/**
 * One process's /proc/<pid>/stat: its name, its parent, its own CPU ticks (utime + stime) and the
 * ticks of the children it has reaped (cutime + cstime); null when it is gone.
 */
export function readStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    // Fields from the 3rd on (state, ppid, …): utime, stime, cutime, cstime are the 14th to 17th.
    const rest = stat.slice(close + 2).split(' ');
    return {
      comm,
      ppid: Number(rest[1]),
      ticks: Number(rest[11]) + Number(rest[12]),
      childTicks: Number(rest[13]) + Number(rest[14]),
    };
  } catch {
    return null; // gone meanwhile
  }
}

const TICK = 100; // USER_HZ; 100 on every Linux of interest

/** Cores used (CPU seconds per second) during [before, after], per group. `pids` names ours. */
export function cpuUsage(before, after, pids) {
  if (!before || !after) return null;
  const seconds = Number(after.at - before.at) / 1e9;
  const groups = { server: 0, loadgen: 0, postgres: 0, redis: 0, other: 0 };
  const topOther = new Map();
  for (const [pid, a] of after.procs) {
    const d = (a.ticks - (before.procs.get(pid)?.ticks ?? 0)) / TICK;
    if (d <= 0) continue;
    let g = 'other';
    if (pid === pids.server) g = 'server';
    else if (pid === process.pid) g = 'loadgen';
    else if (a.comm === 'postgres' || a.comm === 'postmaster') g = 'postgres';
    else if (a.comm.startsWith('redis-server')) g = 'redis';
    groups[g] += d;
    if (g === 'other') topOther.set(a.comm, (topOther.get(a.comm) ?? 0) + d);
  }
  const cores = (x) => round(x / seconds, 2);
  const all = after.total.all - before.total.all || 1;
  const busy = (after.total.busy - before.total.busy) / all;
  // /proc/stat counts every core: scale its ticks to cores with the number of cores.
  const ncpu = cpus().length;
  const totalCores = (ticks) => (ticks / all) * ncpu;
  const irq = totalCores(after.total.irq - before.total.irq);
  const steal = totalCores(after.total.steal - before.total.steal);
  const attributed = Object.values(groups).reduce((a, b) => a + b, 0) / seconds;
  return {
    machine_busy_pct: round(100 * busy, 1),
    cores_used: Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, cores(v)])),
    // Kernel interrupt work (loopback networking lands much of its work here), time taken by the
    // hypervisor, and busy time of no live process (mostly processes that exited during the run).
    irq_cores: round(irq, 2),
    steal_cores: round(steal, 2),
    unattributed_cores: round(Math.max(0, busy * ncpu - irq - steal - attributed), 2),
    top_other: [...topOther]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .filter(([, v]) => v / seconds >= 0.05)
      .map(([comm, v]) => `${comm} ${cores(v)}`),
  };
}

/**
 * CPU milliseconds per group of process trees during [before, after]. A group is `{ pids, descendants }`:
 * its root processes' own time counts in the group; their descendants' time (live ones found through
 * the snapshots' parent links, exited ones through the reaped-children time of whoever waited for
 * them) counts in the group named by `descendants` (the group itself when unset). Processes in
 * `exclude` (say, another database's backends) count in `excluded`, outside the total.
 */
export function cpuTree(before, after, groups, exclude = []) {
  if (!before || !after) return null;
  const skip = new Set(exclude);
  const totals = (snap) => {
    const kids = new Map();
    for (const [pid, p] of snap.procs) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), pid]);
    const ticks = {};
    const add = (key, n) => {
      ticks[key] = (ticks[key] ?? 0) + n;
    };
    for (const [name, g] of Object.entries(groups)) {
      const into = g.descendants ?? name;
      add(name, 0);
      add(into, 0);
      for (const rootPid of g.pids.filter(Boolean)) {
        const p = snap.procs.get(rootPid);
        if (!p) continue;
        add(name, p.ticks);
        add(into, p.childTicks);
        const stack = [...(kids.get(rootPid) ?? [])];
        while (stack.length) {
          const pid = stack.pop();
          const d = snap.procs.get(pid);
          add(skip.has(pid) ? 'excluded' : into, d.ticks + d.childTicks);
          stack.push(...(kids.get(pid) ?? []));
        }
      }
    }
    return ticks;
  };
  const a = totals(after);
  const b = totals(before);
  const ms = Object.fromEntries(Object.keys(a).map((k) => [k, ((a[k] - (b[k] ?? 0)) * 1000) / TICK]));
  const total = Object.entries(ms).reduce((sum, [k, v]) => (k === 'excluded' ? sum : sum + v), 0);
  return { seconds: round(Number(after.at - before.at) / 1e9, 3), ms, total_ms: total };
}

/** The shared servers' root processes: PostgreSQL's postmaster (the parent of `db`'s backend) and Redis (INFO's process_id). */
export async function servicePids(db, redisUrl) {
  const { rows } = await db.query('SELECT pg_backend_pid() AS pid');
  const postmaster = readStat(rows[0].pid)?.ppid;
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const m = /^process_id:(\d+)/m.exec(await redis.info('server'));
    return { postmaster, redis: m ? Number(m[1]) : undefined };
  } finally {
    redis.disconnect();
  }
}

/** cpuTree groups: `groups` (e.g. the API, the workers) plus PostgreSQL's and Redis's process trees (`services`, from servicePids). */
export function withServices(services, groups) {
  return { ...groups, postgres: { pids: [services.postmaster] }, redis: { pids: [services.redis] } };
}

/**
 * Starts measuring the CPU of `groups` (cpuTree); `await stop()` gives it. Client backends of
 * databases other than `db`'s (another agent's tests on the shared PostgreSQL) are kept apart.
 */
export function cpuWindow(groups, db) {
  const before = cpuSnapshot();
  let after;
  return {
    async stop() {
      after = cpuSnapshot();
      const { rows } = await db.query('SELECT pid FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> current_database()');
      const others = rows.map((r) => r.pid);
      return cpuTree(before, after, groups, others);
    },
    /** cpuUsage (cores by process name) over the same window, once stopped. */
    cores: (pids) => cpuUsage(before, after, pids),
  };
}

/** CPU milliseconds per unit of work (job, row, add) from a cpuTree result: `total` and each group. */
export function cpuPerUnit(cpu, units) {
  if (!cpu || !units) return null;
  const per = (ms) => round(ms / units, 3);
  return { total: per(cpu.total_ms), ...Object.fromEntries(Object.entries(cpu.ms).map(([k, v]) => [k, per(v)])) };
}

/** "1.2 ms (api 0.5, postgres 0.6, redis 0.1)": a cpuPerUnit result, groups that used any CPU. */
export function describeCpuPerUnit(per) {
  if (!per) return 'not measured';
  const { total, ...groups } = per;
  const parts = Object.entries(groups)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k === 'excluded' ? 'other databases (not counted)' : k} ${v}`);
  return `${total} ms (${parts.join(', ')})`;
}

export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function round(x, digits = 2) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The code measured: HEAD, and the source files that differ from it (a shared work tree may hold someone's work in progress). */
export function sourceInfo() {
  try {
    const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const changed = git('status', '--porcelain', '--', 'apps', 'libs', 'prisma', 'package.json', 'package-lock.json', '.swcrc')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return { commit: git('rev-parse', '--short', 'HEAD').trim(), uncommitted: changed };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}

export function machineInfo() {
  const c = cpus();
  return {
    cores: c.length,
    cpu_model: c[0]?.model?.trim() ?? 'unknown',
    memory_gib: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    load_average_at_start: loadavg().map((x) => round(x, 2)),
  };
}

/**
 * Writes bench/report.json (everything: settings, machine, every run of every area) and
 * bench/report.md (one table per area). An area is
 * { area, title, description, columns: [{key, label}], rows: [{...}], checks: [{name, value, target, pass, text}], runs, notes }.
 */
export function writeReport({ settings, machine, source, areas, startedAt, finishedAt }) {
  const dir = join(root, 'bench');
  mkdirSync(dir, { recursive: true });
  const json = { generated_at: finishedAt, started_at: startedAt, settings, machine, source, areas };
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(json, null, 2)}\n`);

  const md = [];
  md.push('# Benchmark report', '');
  md.push(
    `Generated by \`npm run bench\` on ${finishedAt}. See [docs/performance.md](../docs/performance.md) for what each figure means.`,
    '',
  );
  md.push(
    `Machine: ${machine.cores} cores (${machine.cpu_model}), ${machine.memory_gib} GiB, Node ${machine.node}, ${machine.platform}; ` +
      `load average at start ${machine.load_average_at_start.join(' / ')}` +
      (machine.other_cores_before_runs !== undefined
        ? `; other processes used ${machine.other_cores_before_runs} cores just before the runs.`
        : '.'),
    '',
  );
  if (source) {
    md.push(
      `Code: commit ${source.commit}` +
        (source.uncommitted.length
          ? ` plus uncommitted changes to ${source.uncommitted.length} path(s): ${source.uncommitted.map((p) => `\`${p}\``).join(', ')}.`
          : ', no uncommitted changes.') +
        (source.note ? ` ${source.note}` : ''),
      '',
    );
  }
  md.push(
    `Settings: ${settings.connections} connections, ${settings.duration} s per measured run after a ${settings.warmup} s warm-up, ` +
      `${settings.rounds} alternating rounds; figures are medians of the rounds. autocannon runs in the bench's own process on the same cores.`,
    '',
  );
  for (const a of areas) {
    md.push(`## ${a.title}`, '');
    if (a.description) md.push(a.description, '');
    md.push(`| ${a.columns.map((c) => c.label).join(' | ')} |`);
    md.push(`|${a.columns.map((c) => (c.align === 'left' ? ' --- ' : ' ---: ')).join('|')}|`);
    for (const r of a.rows) md.push(`| ${a.columns.map((c) => fmt(r[c.key])).join(' | ')} |`);
    md.push('');
    for (const c of a.checks ?? []) md.push(`- **${c.name}: ${c.text}** — target ${c.target}: **${c.pass ? 'PASS' : 'BELOW'}**`);
    if (a.checks?.length) md.push('');
    if (a.runs?.length) {
      md.push('<details><summary>Every measured run</summary>', '');
      md.push(
        '| # | target | requests/s | p50 ms | p99 ms | max ms | requests | non-2xx | errors | cores: server | autocannon | postgres | redis | other | exited / unattributed | irq | steal |',
      );
      md.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
      a.runs.forEach((r, i) => {
        const c = r.cpu?.cores_used ?? {};
        md.push(
          `| ${r.round ?? i + 1} | ${r.label} | ${fmt(r.rps)} | ${fmt(r.latency_ms.p50)} | ${fmt(r.latency_ms.p99)} | ${fmt(r.latency_ms.max)} | ${fmt(r.requests)} | ${r.non2xx} | ${r.errors} | ` +
            `${fmt(c.server)} | ${fmt(c.loadgen)} | ${fmt(c.postgres)} | ${fmt(c.redis)} | ${fmt(c.other)}${r.cpu?.top_other?.length ? ` (${r.cpu.top_other.join(', ')})` : ''} | ` +
            `${fmt(r.cpu?.unattributed_cores)} | ${fmt(r.cpu?.irq_cores)} | ${fmt(r.cpu?.steal_cores)} |`,
        );
      });
      md.push(
        '',
        'Cores = CPU seconds per second of the run, from /proc: the measured server process, this bench process (autocannon), PostgreSQL backends, Redis, every other live process, busy time of no live process (mostly processes that started and exited during the run), kernel interrupt work (much of loopback networking), and time the hypervisor took (steal).',
        '',
      );
      md.push('</details>', '');
    }
    for (const n of a.notes ?? []) md.push(`- ${n}`);
    if (a.notes?.length) md.push('');
  }
  writeFileSync(join(dir, 'report.md'), md.join('\n'));
}

function fmt(v) {
  if (typeof v === 'number')
    return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return v ?? '';
}

/** The same table as the report, for the terminal. */
export function printArea(a) {
  const header = a.columns.map((c) => c.label);
  const rows = a.rows.map((r) => a.columns.map((c) => String(fmt(r[c.key]))));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (a.columns[i].align === 'left' ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${a.title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  for (const c of a.checks ?? []) console.log(`${c.name}: ${c.text} (target ${c.target}) → ${c.pass ? 'PASS' : 'BELOW'}`);
  console.log('');
}
