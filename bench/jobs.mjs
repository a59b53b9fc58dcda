// Scenario "jobs": the job engine, each figure beside a baseline measured in the same run.
//  1. Job submission rate: POST /v1/jobs on the real API (autocannon, 50 connections; jobs only
//     queue, no worker runs) against two baselines with as many in flight: raw BullMQ `queue.add`,
//     with the API's connection and add options, into a throwaway queue on the same Redis
//     (bench/jobs-enqueue-runner.mjs), and the durable floor, plain `pg` writing the same job and
//     `job.queued` rows in batched transactions into the same tables (bench/jobs-floor-runner.mjs).
//     Alternating rounds, medians; CPU per job of every process involved, from /proc.
//  2. Training job wall time: a training job submitted through the API (`Prefer: wait=60`) and run
//     by a real worker process (TF_BACKEND=wasm, one compute child), from the request to the answer
//     with the succeeded job, against plain libs/ml `train()` of the same model on the same rows
//     with the same hyperparameters in a child process of its own (bench/jobs-train-runner.mjs).
//     Alternating rounds, medians.
//  3. Worker memory: RSS of a fresh worker process and its compute child after 10 small inference
//     jobs and after 200, and TF.js's tensor count in the compute child, read through its inspector
//     (bench/jobs-inspect.mjs), since the worker does not report it.
// The tenant, datasets, models and jobs are made through the API, as a client would.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import {
  call,
  cpuPerUnit,
  cpuSnapshot,
  cpuUsage,
  cpuWindow,
  describeCpuPerUnit,
  envNumber,
  loadTest,
  median,
  RATIO_COLUMNS,
  requestJson,
  root,
  round,
  sleep,
  startApi,
  servicePids,
  startProcess,
  step,
  withServices,
} from './harness.mjs';

export const TARGETS = {
  /** POST /v1/jobs rate ÷ queue.add rate, at least (issue 16: 0.5 asked a durable write to match half an in-memory one) */
  submit_ratio: 0.1,
  /** POST /v1/jobs rate ÷ the durable floor's rate (plain pg, same rows, batched), at least */
  floor_ratio: 0.5,
  /** training job wall time ÷ plain train() time, at most */
  training_ratio: 1.15,
  /** worker RSS after the last small job ÷ after the first 10, at most */
  rss_ratio: 1.2,
};
/** Other processes using more than this many cores during a submission run make its figures suspect. */
const CONTENDED_CORES = 0.2;
const FIRST_SMALL_JOBS = 10;
const INSPECT_PORT = 9229;
const BASELINE_QUEUE = 'bench-enqueue-baseline';
const FLOOR_LABEL = 'plain pg durable floor (baseline)';
const TRAIN_DATA = { features: 8, classes: 3, seed: 11 };
const TINY_DATA = { n: 60, features: 2, classes: 2, seed: 5 };

/**
 * BENCH_JOBS_TRAIN_ROUNDS (default 3), BENCH_JOBS_TRAIN_ROWS (5,000), BENCH_JOBS_TRAIN_EPOCHS (10),
 * BENCH_JOBS_SMALL_JOBS (200: the small jobs of the memory check, the first 10 included),
 * BENCH_JOBS_SMALL_CONCURRENCY (4 small jobs submitted at once). The submission runs use
 * BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS and BENCH_ROUNDS like api-me.
 */
export function jobsSettings(env = process.env) {
  const int = (name, fallback, min) => envNumber(env, name, fallback, min, true);
  return {
    trainRounds: int('BENCH_JOBS_TRAIN_ROUNDS', 3, 1),
    trainRows: int('BENCH_JOBS_TRAIN_ROWS', 5_000, 100),
    trainEpochs: int('BENCH_JOBS_TRAIN_EPOCHS', 10, 1),
    smallJobs: int('BENCH_JOBS_SMALL_JOBS', 200, FIRST_SMALL_JOBS + 1),
    smallConcurrency: int('BENCH_JOBS_SMALL_CONCURRENCY', 4, 1),
  };
}

/** Waits for the JSON line `{"event": event, ...}` in a started process's output (after its ready line). */
async function waitForEvent(handle, event, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const line of handle.output) {
      if (!line.startsWith('{') || !line.includes(`"${event}"`)) continue;
      try {
        const msg = JSON.parse(line);
        if (msg.event === event) return msg;
      } catch {
        // not ours
      }
    }
    if (handle.proc.exitCode !== null || handle.proc.signalCode !== null)
      throw new Error(
        `the process exited (${handle.proc.exitCode ?? handle.proc.signalCode}) before '${event}':\n${handle.output.slice(-30).join('\n')}`,
      );
    if (Date.now() > end) throw new Error(`no '${event}' in ${timeoutMs} ms:\n${handle.output.slice(-30).join('\n')}`);
    await sleep(20);
  }
}

/** CPU seconds a process used between two snapshots (0 if it was not there). */
function cpuSeconds(before, after, pid) {
  if (!before || !after || !pid) return undefined;
  const a = after.procs.get(pid);
  if (!a) return undefined;
  return round((a.ticks - (before.procs.get(pid)?.ticks ?? 0)) / 100, 2);
}

/** VmRSS of a process in KiB, from /proc/<pid>/status (null when it is gone or not Linux). */
function rssKib(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The pids of a process's children, from /proc/<pid>/task/<tid>/children. */
function childPids(pid) {
  const pids = new Set();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) pids.add(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return [...pids];
}

/** RSS of the worker and its compute children: the median of 5 samples 200 ms apart, in MiB. */
async function workerMemory(workerPid) {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    if (i) await sleep(200);
    const children = childPids(workerPid).map((pid) => ({ pid, kib: rssKib(pid) ?? 0 }));
    const worker = rssKib(workerPid) ?? 0;
    samples.push({
      worker,
      children: children.reduce((s, c) => s + c.kib, 0),
      total: worker + children.reduce((s, c) => s + c.kib, 0),
      pids: children.map((c) => c.pid),
    });
  }
  const mib = (k) => round(k / 1024, 1);
  return {
    worker_mib: mib(median(samples.map((s) => s.worker))),
    children_mib: mib(median(samples.map((s) => s.children))),
    total_mib: mib(median(samples.map((s) => s.total))),
    child_pids: samples.at(-1).pids,
    samples_total_mib: samples.map((s) => mib(s.total)),
  };
}

/** TF.js memory of a compute child through its (already open) inspector; { ok: false, reason } when unreachable. */
async function tensorsOf(pid) {
  let helper;
  try {
    helper = await startProcess('bench/jobs-inspect.mjs', 'jobs.inspect', {
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        NODE_NO_WARNINGS: '1',
        JOBS_INSPECT_PID: String(pid),
        JOBS_INSPECT_PORT: String(INSPECT_PORT),
      },
      nodeArgs: ['--experimental-websocket'],
      timeoutMs: 15_000,
    });
    return helper.ready;
  } catch (err) {
    return { ok: false, reason: err.message.split('\n')[0] };
  } finally {
    await helper?.stop();
  }
}

/** Opens a compute child's inspector (SIGUSR1, as `node --inspect`) and waits until it answers on INSPECT_PORT. */
async function openInspector(pid) {
  try {
    process.kill(pid, 'SIGUSR1');
  } catch (err) {
    return { ok: false, reason: `SIGUSR1 to ${pid}: ${err.message}` };
  }
  const end = Date.now() + 5_000;
  let last = 'no answer';
  while (Date.now() < end) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${INSPECT_PORT}/json/list`)).json();
      if (list.some((t) => /compute\/child\.js$/.test(t.url ?? ''))) return { ok: true };
      last = `127.0.0.1:${INSPECT_PORT} serves ${list.map((t) => t.url).join(', ') || 'nothing'}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(100);
  }
  return { ok: false, reason: `the inspector did not open on 127.0.0.1:${INSPECT_PORT} (${last})` };
}

function startWorker(env) {
  return startProcess('dist/apps/worker/src/main.js', 'worker.ready', {
    env: { ...env, TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '1', LOG_LEVEL: 'warn' },
    timeoutMs: 60_000,
  });
}

const sortedJson = (o) => JSON.stringify(o, Object.keys(o ?? {}).sort());
const seconds = (iso) => Date.parse(iso) / 1000;

export default {
  id: 'jobs',
  title: 'Jobs: submission rate, training job wall time, worker memory',

  /** @param {{ env: Record<string,string>, settings: ReturnType<typeof import('./harness.mjs').benchSettings> }} ctx */
  async run({ env, settings }) {
    const js = jobsSettings();
    const { duration, warmup, connections, rounds } = settings;
    const { blobRows } = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'synthetic.js')).href);
    // BENCH_PROFILE=1: a CPU profile of the API over the whole scenario (the submission runs are most of its work).
    const profileDir = settings.profile ? join(root, 'bench', 'out', 'profiles') : undefined;
    let api;
    let worker;
    let tenantId;
    let floorTenantId;
    const db = new pg.Client({ connectionString: env.DATABASE_URL });
    try {
      await db.connect();
      // The shared PostgreSQL's and Redis's processes, for CPU per job.
      const services = await servicePids(db, env.REDIS_URL);
      step('jobs: starting the API');
      api = await startApi(env, { profileDir });
      const admin = env.ADMIN_API_KEY;
      const tenant = await requestJson(`${api.url}/v1/admin/tenants`, {
        method: 'POST',
        token: admin,
        body: {
          name: 'bench-jobs',
          plan: 'enterprise',
          quotas: {
            requests_per_minute: 100_000_000,
            max_queued_jobs: 100_000_000,
            max_concurrent_jobs: 1_000,
            monthly_compute_seconds: 100_000_000,
          },
        },
      });
      tenantId = tenant.body.id;
      const key = await requestJson(`${api.url}/v1/admin/tenants/${tenant.body.id}/api-keys`, {
        method: 'POST',
        token: admin,
        body: { name: 'bench-jobs' },
      });
      const secret = key.body.secret;
      const t = (method, path, body, headers) => call(`${api.url}${path}`, { method, token: secret, body, headers });
      const must = (r, status, what) => {
        if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
        return r.body;
      };
      const WAIT = { Prefer: 'wait=60' };
      const mustSucceed = (r, what) => {
        if (r.status !== 200 || r.body?.status !== 'succeeded')
          throw new Error(
            `${what}: expected 200 with a succeeded job, got ${r.status} ${r.body?.status ?? ''}: ${JSON.stringify(r.body?.error ?? r.text.slice(0, 500))}`,
          );
        return r.body;
      };

      const trainRows = blobRows(js.trainRows, TRAIN_DATA);
      const tinyRows = blobRows(TINY_DATA.n, TINY_DATA);
      const trainDs = must(
        await t('POST', '/v1/datasets', { name: 'jobs-train', task: 'classification', records: trainRows }),
        201,
        'POST /v1/datasets (training rows)',
      );
      const tinyDs = must(
        await t('POST', '/v1/datasets', { name: 'jobs-tiny', task: 'classification', records: tinyRows }),
        201,
        'POST /v1/datasets (tiny)',
      );
      const models = {};
      for (const name of ['jobs-train', 'jobs-tiny', 'jobs-submit'])
        models[name] = must(await t('POST', '/v1/models', { name, task: 'classification' }), 201, `POST /v1/models ${name}`);
      step(
        `jobs: tenant ${tenant.body.id}, datasets ${trainDs.id} (${js.trainRows} rows × ${TRAIN_DATA.features} features, ${TRAIN_DATA.classes} classes) and ${tinyDs.id} (${TINY_DATA.n} rows)`,
      );

      // ── 2. Training job wall time ─────────────────────────────────────────────────────────────
      step('jobs: starting a worker (TF_BACKEND=wasm, WORKER_CONCURRENCY=1)');
      worker = await startWorker(env);
      const hyperparameters = { epochs: js.trainEpochs, seed: 7 };
      const trainBody = { type: 'training', model: 'jobs-train', dataset: trainDs.id, hyperparameters };
      // The tiny model of the memory check, then a 1-epoch warm-up of the measured job (the runner warms up alike).
      const tiny = mustSucceed(
        await t(
          'POST',
          '/v1/jobs',
          { type: 'training', model: 'jobs-tiny', dataset: tinyDs.id, hyperparameters: { epochs: 3, seed: 1 } },
          WAIT,
        ),
        'tiny training job',
      );
      const warm = mustSucceed(
        await t('POST', '/v1/jobs', { ...trainBody, hyperparameters: { ...hyperparameters, epochs: 1 } }, WAIT),
        'warm-up training job',
      );
      step(
        `jobs: worker ${worker.ready.id} ready (backend ${worker.ready.backend}); tiny model v${tiny.version}; warm-up job ${warm.compute_seconds} s of compute`,
      );

      const childOf = () => childPids(worker.proc.pid);
      const apiTraining = async (roundNo) => {
        const [child] = childOf();
        const before = cpuSnapshot();
        const t0 = performance.now();
        const r = await t('POST', '/v1/jobs', trainBody, WAIT);
        const wall = (performance.now() - t0) / 1000;
        const after = cpuSnapshot();
        const j = mustSucceed(r, `training job (round ${roundNo})`);
        const inJob = seconds(j.finished_at) - seconds(j.created_at);
        return {
          round: roundNo,
          job_id: j.id,
          seconds: round(wall, 3),
          // where the wall time went, from the job's own timestamps (PostgreSQL's and the worker's clocks, same machine)
          queued_s: round(seconds(j.started_at) - seconds(j.created_at), 3),
          compute_s: j.compute_seconds,
          worker_other_s: round(seconds(j.finished_at) - seconds(j.started_at) - j.compute_seconds, 3),
          api_s: round(wall - inJob, 3),
          sha256: j.result?.sha256,
          hyperparameters: j.result?.hyperparameters,
          accuracy: j.result?.metrics?.accuracy,
          cpu_s: {
            compute_child: cpuSeconds(before, after, child),
            worker: cpuSeconds(before, after, worker.proc.pid),
            api: cpuSeconds(before, after, api.proc.pid),
          },
          cpu: cpuUsage(before, after, { server: child }),
        };
      };
      const plainTraining = async (roundNo) => {
        const runner = await startProcess('bench/jobs-train-runner.mjs', 'jobs.train.ready', {
          env: {
            ...process.env,
            NODE_OPTIONS: '',
            TF_BACKEND: 'wasm',
            JOBS_TRAIN_ROWS: String(js.trainRows),
            JOBS_TRAIN_FEATURES: String(TRAIN_DATA.features),
            JOBS_TRAIN_CLASSES: String(TRAIN_DATA.classes),
            JOBS_TRAIN_SEED: String(TRAIN_DATA.seed),
            JOBS_TRAIN_HYPERPARAMETERS: JSON.stringify(hyperparameters),
          },
          timeoutMs: 180_000,
        });
        try {
          const before = cpuSnapshot();
          process.kill(runner.proc.pid, 'SIGUSR2');
          const r = await waitForEvent(runner, 'jobs.train.result', 180_000);
          const after = cpuSnapshot();
          return {
            round: roundNo,
            ...r,
            seconds: r.seconds,
            cpu_s: { runner: cpuSeconds(before, after, runner.proc.pid) },
            cpu: cpuUsage(before, after, { server: runner.proc.pid }),
          };
        } finally {
          await runner.stop();
        }
      };
      const trainRuns = { api: [], plain: [] };
      for (let i = 1; i <= js.trainRounds; i++) {
        const order = i % 2 ? ['api', 'plain'] : ['plain', 'api'];
        for (const which of order) {
          const r = which === 'api' ? await apiTraining(i) : await plainTraining(i);
          trainRuns[which].push(r);
          step(
            which === 'api'
              ? `jobs: training round ${i}/${js.trainRounds} API job   ${r.seconds} s (queued ${r.queued_s}, compute ${r.compute_s}, worker other ${r.worker_other_s}, API ${r.api_s})`
              : `jobs: training round ${i}/${js.trainRounds} train()   ${r.seconds} s (libs/ml ${round(r.duration_seconds, 3)} s, epoch loop ${round(r.loop_seconds, 3)} s)`,
          );
        }
      }
      await worker.stop();
      worker = undefined;
      const jobSeconds = median(trainRuns.api.map((r) => r.seconds));
      const plainSeconds = median(trainRuns.plain.map((r) => r.seconds));
      const trainRatio = round(jobSeconds / plainSeconds, 3);
      const trainRatios = trainRuns.api.map((r, i) => round(r.seconds / trainRuns.plain[i].seconds, 3));
      const sameModel = trainRuns.api.every((a) => trainRuns.plain.every((p) => a.sha256 === p.sha256));
      const sameHp = trainRuns.api.every((a) =>
        trainRuns.plain.every((p) => sortedJson(a.hyperparameters) === sortedJson(p.hyperparameters)),
      );
      const breakdown = {
        queued_s: median(trainRuns.api.map((r) => r.queued_s)),
        compute_s: median(trainRuns.api.map((r) => r.compute_s)),
        worker_other_s: median(trainRuns.api.map((r) => r.worker_other_s)),
        api_s: median(trainRuns.api.map((r) => r.api_s)),
        plain_train_s: plainSeconds,
        plain_epoch_loop_s: median(trainRuns.plain.map((r) => r.loop_seconds)),
      };

      // ── 3. Worker memory after 10 and after 200 small jobs ─────────────────────────────────────
      step('jobs: starting a fresh worker for the memory check');
      worker = await startWorker(env);
      const computeChild = worker.ready.children?.[0] ?? childOf()[0];
      const inspector = await openInspector(computeChild);
      if (!inspector.ok) step(`jobs: no tensor count: ${inspector.reason}`);
      const tinyInputs = tinyRows.map(({ label: _label, ...x }) => x);
      let nextSmall = 0;
      const runSmall = async (count) => {
        const last = nextSmall + count;
        const started = performance.now();
        const submitter = async () => {
          while (nextSmall < last) {
            const i = nextSmall++;
            mustSucceed(
              await t(
                'POST',
                '/v1/jobs',
                { type: 'inference', model: 'jobs-tiny', version: tiny.version, inputs: [tinyInputs[i % tinyInputs.length]] },
                WAIT,
              ),
              `small inference job ${i + 1}`,
            );
          }
        };
        await Promise.all(Array.from({ length: js.smallConcurrency }, submitter));
        return round(count / ((performance.now() - started) / 1000), 1);
      };
      const settle = () => sleep(1_000);
      // Checkpoints: after the first 10 jobs (the reference), at the quarters, and after the last.
      const points = [...new Set([FIRST_SMALL_JOBS, ...[0.25, 0.5, 0.75].map((f) => Math.round(f * js.smallJobs)), js.smallJobs])]
        .filter((n) => n >= FIRST_SMALL_JOBS)
        .sort((a, b) => a - b);
      const checkpoints = [];
      const smallStarted = performance.now();
      for (const n of points) {
        const rate = await runSmall(n - nextSmall);
        await settle();
        const mem = await workerMemory(worker.proc.pid);
        const tf = inspector.ok ? await tensorsOf(computeChild) : inspector;
        checkpoints.push({ jobs: n, jobs_per_second: rate, ...mem, tfjs: tf });
        step(
          `jobs: after ${n} small jobs: RSS ${mem.total_mib} MiB (worker ${mem.worker_mib}, compute child ${mem.children_mib})` +
            (tf.ok ? `, ${tf.numTensors} tensors, child JS heap ${mib(tf.memoryUsage?.heapUsed)} MiB` : '') +
            `; ${rate} jobs/s`,
        );
      }
      const smallSeconds = round((performance.now() - smallStarted) / 1000, 1);
      const mem10 = checkpoints[0];
      const memN = checkpoints.at(-1);
      const tf10 = mem10.tfjs;
      const tfN = memN.tfjs;
      const sameChild = checkpoints.every((c) => c.child_pids.includes(computeChild));
      await worker.stop();
      worker = undefined;
      const rssRatio = round(memN.total_mib / mem10.total_mib, 3);
      // Growth over the second half alone (from the checkpoint nearest half-way): heaps that grow to their working size early show here as ~1.
      const half = checkpoints.reduce(
        (best, c) => (Math.abs(c.jobs - js.smallJobs / 2) < Math.abs(best.jobs - js.smallJobs / 2) ? c : best),
        mem10,
      );
      const secondHalf = half === memN ? '—' : `${round(memN.total_mib / half.total_mib, 3)}× from ${half.jobs}`;
      const tensorsKnown = tf10.ok && tfN.ok;

      // ── 1. Submission rate: POST /v1/jobs vs queue.add ───────────────────────────────────────
      // Last, with no worker running: every accepted job stays queued (the bench database is dropped at the end).
      const submitBody = JSON.stringify({ type: 'training', model: 'jobs-submit', dataset: tinyDs.id, hyperparameters: { epochs: 5 } });
      const apiTarget = {
        url: `${api.url}/v1/jobs`,
        method: 'POST',
        body: submitBody,
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        serverPid: api.proc.pid,
      };
      const queuedJobs = async () => (await db.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'queued'`)).rows[0].n;
      // What the API's PostgreSQL connections do during a measured run: sampled every 100 ms from pg_stat_activity
      // (this database's backends but the sampler's own), as average backends per state.
      const sampleBackends = () => {
        const totals = new Map();
        let samples = 0;
        let busy = false;
        const timer = setInterval(async () => {
          if (busy) return;
          busy = true;
          try {
            const { rows: found } = await db.query(
              `SELECT coalesce(state, '?') AS state, coalesce(wait_event_type || ':' || wait_event, '') AS wait, count(*)::int AS n
                 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' GROUP BY 1, 2`,
            );
            samples++;
            for (const { state, wait, n } of found) {
              const k =
                wait === 'Lock:advisory'
                  ? 'waiting for the tenant lock (advisory)'
                  : wait.startsWith('Client:') || state === 'idle'
                    ? state
                    : `${state}${wait ? ` (${wait})` : ''}`;
              totals.set(k, (totals.get(k) ?? 0) + n);
            }
          } catch {
            // a missed sample
          } finally {
            busy = false;
          }
        }, 100);
        return () => {
          clearInterval(timer);
          return Object.fromEntries([...totals].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v / Math.max(1, samples), 2)]));
        };
      };
      const apiRun = async (secs, phase) => {
        const stopSampling = phase === 'measured' ? sampleBackends() : null;
        const window = cpuWindow(withServices(services, { api: { pids: [api.proc.pid] } }), db);
        const r = await loadTest({ ...apiTarget, duration: secs, connections, label: 'API POST /v1/jobs' });
        r.cpu_ms = await window.stop();
        r.cpu_per_job = cpuPerUnit(r.cpu_ms, r.status_codes['202']);
        if (stopSampling) r.postgres_backends = stopSampling();
        const others = Object.keys(r.status_codes).filter((c) => c !== '202');
        if (r.non2xx > 0 || r.errors > 0 || others.length) {
          throw new Error(
            `POST /v1/jobs (${phase}): ${r.non2xx} non-2xx answer(s) and ${r.errors} error(s) out of ${r.requests}; status codes ${JSON.stringify(r.status_codes)} (every answer must be 202)`,
          );
        }
        return r;
      };
      // A baseline runner (a child process that warms up, says `<event>.ready`, measures on SIGUSR2 and says
      // `<event>.result`): its result line, and the CPU used while it measured (/proc snapshots bracket it).
      const measureRunner = async (entry, event, runnerEnv) => {
        const runner = await startProcess(entry, `${event}.ready`, {
          env: { ...process.env, NODE_OPTIONS: '', ...runnerEnv },
          timeoutMs: 30_000 + warmup * 1000,
        });
        try {
          const window = cpuWindow(withServices(services, { runner: { pids: [runner.proc.pid] } }), db);
          const started = new Date();
          process.kill(runner.proc.pid, 'SIGUSR2');
          const result = await waitForEvent(runner, `${event}.result`, (duration + 30) * 1000);
          const cpuMs = await window.stop();
          return { result, started, cpu: window.cores({ server: runner.proc.pid }), cpuMs };
        } finally {
          await runner.stop();
        }
      };
      // A runner's figures in the shape of a loadTest run (the report's runs table).
      const runnerRecord = (label, { result: r, started, cpu, cpuMs }, count) => ({
        label,
        duration_s: r.seconds,
        requests: count,
        rps: r.rate,
        latency_ms: r.latency_ms,
        non2xx: 0,
        errors: r.errors,
        timeouts: 0,
        status_codes: {},
        cpu,
        cpu_ms: cpuMs,
        cpu_per_job: cpuPerUnit(cpuMs, count),
        started_at: started.toISOString(),
      });
      const baselineRun = async () => {
        try {
          const m = await measureRunner('bench/jobs-enqueue-runner.mjs', 'jobs.enqueue', {
            REDIS_URL: env.REDIS_URL,
            REDIS_PREFIX: env.REDIS_PREFIX,
            JOBS_ENQUEUE_SECONDS: String(duration),
            JOBS_ENQUEUE_WARMUP: String(warmup),
            JOBS_ENQUEUE_CONCURRENCY: String(connections),
            JOBS_ENQUEUE_QUEUE: BASELINE_QUEUE,
          });
          const r = m.result;
          if (r.errors > 0) throw new Error(`queue.add baseline: ${r.errors} failed add(s) out of ${r.adds + r.errors}`);
          return runnerRecord('BullMQ queue.add (baseline)', m, r.adds);
        } finally {
          await dropBaselineQueue();
        }
      };
      // The durable floor's rows go to a tenant of their own, so that the API's quota count does not see them.
      const floorTenant = await requestJson(`${api.url}/v1/admin/tenants`, {
        method: 'POST',
        token: admin,
        body: { name: 'bench-jobs-floor', plan: 'enterprise' },
      });
      floorTenantId = floorTenant.body.id;
      const floorRun = async () => {
        try {
          const m = await measureRunner('bench/jobs-floor-runner.mjs', 'jobs.floor', {
            DATABASE_URL: env.DATABASE_URL,
            JOBS_FLOOR_SECONDS: String(duration),
            JOBS_FLOOR_WARMUP: String(warmup),
            JOBS_FLOOR_CONCURRENCY: String(connections),
            JOBS_FLOOR_TENANT: floorTenantId,
            JOBS_FLOOR_MODEL: models['jobs-submit'].id,
            JOBS_FLOOR_DATASET: tinyDs.id,
            JOBS_FLOOR_HYPERPARAMETERS: JSON.stringify(JSON.parse(submitBody).hyperparameters),
          });
          const r = m.result;
          if (r.errors > 0) throw new Error(`durable floor: ${r.errors} failed job(s) out of ${r.jobs + r.errors}: ${r.last_error}`);
          return {
            ...runnerRecord(FLOOR_LABEL, m, r.jobs),
            transactions: r.transactions,
            mean_batch: r.mean_batch,
            connections: r.connections,
          };
        } finally {
          await dropFloorRows();
        }
      };
      // Each floor run writes tens of thousands of jobs: deleted after the run (their events go with them), as the baseline queue is.
      const dropFloorRows = () => db.query('DELETE FROM jobs WHERE tenant_id = $1', [floorTenantId]);
      // Each baseline run adds ~150,000 jobs: delete them after the run, so that Redis does not grow
      // run after run (each run starts from an empty queue; the API's queue holds a few thousand jobs).
      const dropBaselineQueue = async () => {
        const { Redis } = await import('ioredis');
        const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 });
        try {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `{${env.REDIS_PREFIX}:bull:${BASELINE_QUEUE}}:*`, 'COUNT', 5000);
            if (keys.length) await redis.unlink(...keys);
            cursor = next;
          } while (cursor !== '0');
        } finally {
          redis.disconnect();
        }
      };
      const runs = [];
      const warmups = [];
      const backlog = [];
      for (let i = 1; i <= rounds; i++) {
        for (const name of ['baseline', 'api', 'floor']) {
          let r;
          if (name === 'floor') {
            r = await floorRun();
          } else if (name === 'api') {
            if (warmup > 0) warmups.push(await apiRun(warmup, 'warm-up'));
            const queued = await queuedJobs();
            backlog.push(queued);
            r = await apiRun(duration, 'measured');
            r.queued_before = queued;
          } else {
            r = await baselineRun();
          }
          r.round = i;
          runs.push(r);
          const other = disturbance(r);
          step(
            `jobs: submission round ${i}/${rounds} ${name.padEnd(8)} ${r.rps}/s, p99 ${r.latency_ms.p99} ms` +
              (r.cpu
                ? `, server ${r.cpu.cores_used.server} cores, postgres ${r.cpu.cores_used.postgres}, redis ${r.cpu.cores_used.redis}, other processes ${other} cores`
                : '') +
              `; CPU per job ${describeCpuPerUnit(r.cpu_per_job)}` +
              (name === 'api'
                ? `; ${r.queued_before} jobs queued before the run; API's PostgreSQL backends: ${describeBackends(r.postgres_backends)}`
                : '') +
              (name === 'floor' ? `; ${r.transactions} transactions of ${r.mean_batch} jobs on average` : ''),
          );
          if (other > CONTENDED_CORES)
            console.warn(
              `  \x1b[33mwarning:\x1b[0m other processes used ${other} cores during this run (${r.cpu.top_other.join(', ') || 'short-lived processes'}): figures are disturbed`,
            );
        }
      }
      const accepted = [...runs, ...warmups].filter((r) => r.label.startsWith('API')).reduce((s, r) => s + r.status_codes['202'], 0);
      const rowsNow = await queuedJobs();
      const summary = (prefix) => {
        const mine = runs.filter((r) => r.label.startsWith(prefix));
        const cpu = mine.filter((r) => r.cpu);
        return {
          rps: median(mine.map((r) => r.rps)),
          p50: median(mine.map((r) => r.latency_ms.p50)),
          p99: median(mine.map((r) => r.latency_ms.p99)),
          cpu_us: cpu.length ? round(median(cpu.map((r) => (r.cpu.cores_used.server * 1e6) / r.rps)), 0) : undefined,
          postgres_cores: cpu.length ? median(cpu.map((r) => r.cpu.cores_used.postgres)) : undefined,
          redis_cores: cpu.length ? median(cpu.map((r) => r.cpu.cores_used.redis)) : undefined,
          loadgen_cores: cpu.length ? median(cpu.map((r) => r.cpu.cores_used.loadgen)) : undefined,
          cpu_per_job: medianPerUnit(mine.map((r) => r.cpu_per_job)),
          requests: mine.reduce((s, r) => s + r.requests, 0),
        };
      };
      const sb = summary('BullMQ');
      const sa = summary('API');
      const sf = summary(FLOOR_LABEL);
      const floorBatch = median(runs.filter((r) => r.label === FLOOR_LABEL).map((r) => r.mean_batch));
      const apiBackends = {};
      for (const r of runs.filter((x) => x.postgres_backends))
        for (const [k, v] of Object.entries(r.postgres_backends)) (apiBackends[k] ??= []).push(v);
      const backends = Object.fromEntries(
        Object.entries(apiBackends).map(([k, v]) => [
          k,
          round(median(v.length === rounds ? v : [...v, ...Array(rounds - v.length).fill(0)]), 2),
        ]),
      );
      const submitRatio = round(sa.rps / sb.rps, 3);
      const floorRatio = round(sa.rps / sf.rps, 3);
      const submitRatios = [];
      const floorRatios = [];
      for (let i = 1; i <= rounds; i++) {
        const b = runs.find((r) => r.round === i && r.label.startsWith('BullMQ'));
        const a = runs.find((r) => r.round === i && r.label.startsWith('API'));
        const f = runs.find((r) => r.round === i && r.label === FLOOR_LABEL);
        submitRatios.push(round(a.rps / b.rps, 3));
        floorRatios.push(round(a.rps / f.rps, 3));
      }
      const cpuRatio = sa.cpu_per_job && sf.cpu_per_job ? round(sa.cpu_per_job.total / sf.cpu_per_job.total, 2) : '—';
      const contended = runs.filter((r) => disturbance(r) > CONTENDED_CORES);

      // ── The report ──────────────────────────────────────────────────────────────────────────
      const fmtRatio = (x) => x.toFixed(3);
      const mibOrDash = (x) => (x === undefined ? '—' : x);
      const rows = [
        {
          figure: `job submission rate (${connections} in flight): POST /v1/jobs vs BullMQ queue.add`,
          measured: `${sa.rps.toLocaleString('en-US')} jobs/s`,
          baseline: `${sb.rps.toLocaleString('en-US')} adds/s`,
          ratio: fmtRatio(submitRatio),
          target: `≥ ${TARGETS.submit_ratio}`,
          result: submitRatio >= TARGETS.submit_ratio ? 'PASS' : 'BELOW',
          per_round: submitRatios.join(', '),
        },
        {
          figure: `job submission rate (${connections} in flight): POST /v1/jobs vs the durable floor (plain pg, the same job + job.queued rows, batched transactions)`,
          measured: `${sa.rps.toLocaleString('en-US')} jobs/s`,
          baseline: `${sf.rps.toLocaleString('en-US')} jobs/s`,
          ratio: fmtRatio(floorRatio),
          target: `≥ ${TARGETS.floor_ratio}`,
          result: floorRatio >= TARGETS.floor_ratio ? 'PASS' : 'BELOW',
          per_round: `${floorRatios.join(', ')}; ${floorBatch} jobs per transaction (median)`,
        },
        {
          figure: 'CPU per job, all processes (/proc): POST /v1/jobs (API + PostgreSQL + Redis) vs the durable floor (runner + PostgreSQL)',
          measured: `${mibOrDash(sa.cpu_per_job?.total)} ms`,
          baseline: `${mibOrDash(sf.cpu_per_job?.total)} ms`,
          ratio: cpuRatio,
          target: '—',
          result: '—',
          per_round: `API ${describeCpuPerUnit(sa.cpu_per_job)}; floor ${describeCpuPerUnit(sf.cpu_per_job)}; queue.add ${describeCpuPerUnit(sb.cpu_per_job)}`,
        },
        {
          figure: `training job wall time (${js.trainRows.toLocaleString('en-US')} rows × ${TRAIN_DATA.features} features, ${TRAIN_DATA.classes} classes, ${js.trainEpochs} epochs, wasm): submit → succeeded vs plain train()`,
          measured: `${jobSeconds} s`,
          baseline: `${plainSeconds} s`,
          ratio: fmtRatio(trainRatio),
          target: `≤ ${TARGETS.training_ratio}`,
          result: trainRatio <= TARGETS.training_ratio ? 'PASS' : 'BELOW',
          per_round: trainRatios.join(', '),
        },
        {
          figure: `worker RSS (worker + compute child) after ${js.smallJobs} small jobs vs after ${FIRST_SMALL_JOBS}`,
          measured: `${memN.total_mib} MiB`,
          baseline: `${mem10.total_mib} MiB`,
          ratio: fmtRatio(rssRatio),
          target: `≤ ${TARGETS.rss_ratio}`,
          result: rssRatio <= TARGETS.rss_ratio ? 'PASS' : 'BELOW',
          per_round: `after ${checkpoints.map((c) => `${c.jobs}: ${c.total_mib}`).join(', ')} MiB (second half: ${secondHalf}); worker ${mem10.worker_mib} → ${memN.worker_mib}, child ${mem10.children_mib} → ${memN.children_mib}`,
        },
        tensorsKnown
          ? {
              figure: `TF.js tensors in the compute child after ${js.smallJobs} small jobs vs after ${FIRST_SMALL_JOBS}`,
              measured: tfN.numTensors,
              baseline: tf10.numTensors,
              ratio: `+${tfN.numTensors - tf10.numTensors}`,
              target: 'no growth',
              result: tfN.numTensors <= tf10.numTensors ? 'PASS' : 'BELOW',
              per_round: `tensor bytes ${tf10.numBytes} → ${tfN.numBytes}; wasm heap ${mib(tf10.wasmHeapBytes)} → ${mib(tfN.wasmHeapBytes)} MiB`,
            }
          : {
              figure: 'TF.js tensors in the compute child',
              measured: 'not measured',
              baseline: '—',
              ratio: '—',
              target: 'no growth',
              result: '—',
              per_round: String(tf10.reason ?? tfN.reason),
            },
      ];
      const checks = [
        {
          name: 'POST /v1/jobs rate ÷ queue.add rate',
          value: submitRatio,
          target: `≥ ${TARGETS.submit_ratio} on 2 cores`,
          pass: submitRatio >= TARGETS.submit_ratio,
          text: `${submitRatio} (per round: ${submitRatios.join(', ')})`,
        },
        {
          name: 'POST /v1/jobs rate ÷ durable floor rate',
          value: floorRatio,
          target: `≥ ${TARGETS.floor_ratio}`,
          pass: floorRatio >= TARGETS.floor_ratio,
          text: `${floorRatio} (per round: ${floorRatios.join(', ')}; ${sa.rps} vs ${sf.rps} jobs/s)`,
        },
        {
          name: 'training job wall time ÷ plain train() time',
          value: trainRatio,
          target: `≤ ${TARGETS.training_ratio}`,
          pass: trainRatio <= TARGETS.training_ratio,
          text: `${trainRatio} (per round: ${trainRatios.join(', ')})`,
        },
        {
          name: `worker RSS after ${js.smallJobs} jobs ÷ after ${FIRST_SMALL_JOBS}`,
          value: rssRatio,
          target: `≤ ${TARGETS.rss_ratio}`,
          pass: rssRatio <= TARGETS.rss_ratio,
          text: `${rssRatio} (${mem10.total_mib} → ${memN.total_mib} MiB)`,
        },
        ...(tensorsKnown
          ? [
              {
                name: `TF.js tensors in the compute child after ${js.smallJobs} jobs − after ${FIRST_SMALL_JOBS}`,
                value: tfN.numTensors - tf10.numTensors,
                target: 'no growth (≤ 0)',
                pass: tfN.numTensors <= tf10.numTensors,
                text: `${tfN.numTensors - tf10.numTensors} (${tf10.numTensors} → ${tfN.numTensors})`,
              },
            ]
          : []),
      ];
      return {
        area: 'jobs',
        title: this.title,
        description:
          `1: POST /v1/jobs (a training job body on a ${TINY_DATA.n}-row dataset, no Idempotency-Key, no worker running so every job stays queued) on the real API ` +
          `with autocannon at ${connections} connections, against raw BullMQ \`queue.add\` with ${connections} adds in flight (the API's connection and add options, a throwaway queue, same Redis) ` +
          `in a child process, and against the durable floor: plain \`pg\` in a child process writing the rows an accepted job writes (a queued \`jobs\` row and its \`job.queued\` event) into the same tables, ` +
          `${connections} jobs in flight, each free connection of ten writing whatever waits in one transaction (one multi-row INSERT of jobs, one of events); ` +
          `${rounds} alternating rounds of ${duration} s, medians. CPU per job: utime + stime from /proc of every process involved over the measured window ` +
          `(the API or the runner, PostgreSQL's postmaster and all its children, redis-server), divided by the jobs accepted, written or added. ` +
          `2: a training job through the API (\`Prefer: wait=60\`, one real worker process, TF_BACKEND=wasm, WORKER_CONCURRENCY=1), from the request to the answer, against libs/ml \`train()\` ` +
          `of the same model, rows and hyperparameters in a child process; ${js.trainRounds} alternating rounds, medians. ` +
          `3: a fresh worker's RSS (worker process + compute child, /proc VmRSS) and the compute child's TF.js tensor count after ${FIRST_SMALL_JOBS} one-row inference jobs and after ${js.smallJobs}.`,
        columns: [...RATIO_COLUMNS, { key: 'per_round', label: 'per round / detail', align: 'left' }],
        rows,
        checks,
        figures: {
          targets: TARGETS,
          settings: js,
          submission: {
            api: sa,
            baseline: sb,
            floor: sf,
            ratio: submitRatio,
            ratio_per_round: submitRatios,
            floor_ratio: floorRatio,
            floor_ratio_per_round: floorRatios,
            floor_jobs_per_transaction: floorBatch,
            queued_before_each_api_run: backlog,
            api_postgres_backends: backends,
            accepted_202: accepted,
            queued_rows_after: rowsNow,
            body: JSON.parse(submitBody),
          },
          training: {
            job_seconds: jobSeconds,
            plain_seconds: plainSeconds,
            ratio: trainRatio,
            ratio_per_round: trainRatios,
            breakdown,
            same_artifact: sameModel,
            same_hyperparameters: sameHp,
            api_runs: trainRuns.api,
            plain_runs: trainRuns.plain,
          },
          memory: {
            checkpoints,
            rss_ratio: rssRatio,
            rss_ratio_second_half: half === memN ? null : round(memN.total_mib / half.total_mib, 3),
            same_compute_child: sameChild,
            small_jobs_seconds: smallSeconds,
          },
        },
        runs,
        warmups,
        notes: [
          `**Submission.** API ${sa.rps.toLocaleString('en-US')} jobs/s (p50 ${sa.p50} ms, p99 ${sa.p99} ms), API process ${mibOrDash(sa.cpu_us)} µs CPU per job, PostgreSQL ${mibOrDash(sa.postgres_cores)} cores, Redis ${mibOrDash(sa.redis_cores)}, autocannon ${mibOrDash(sa.loadgen_cores)}; ` +
            `queue.add ${sb.rps.toLocaleString('en-US')} adds/s (p50 ${sb.p50} ms, p99 ${sb.p99} ms), ${mibOrDash(sb.cpu_us)} µs CPU per add in the runner, Redis ${mibOrDash(sb.redis_cores)} cores. ` +
            `The API's PostgreSQL backends during the measured runs (pg_stat_activity every 100 ms, average count, median of the runs): ${describeBackends(backends)}. ` +
            `Jobs already queued when each measured API run started: ${backlog.map((n) => n.toLocaleString('en-US')).join(', ')} (they accumulate over the runs). ` +
            `${accepted.toLocaleString('en-US')} answers were 202 (warm-ups included); ${rowsNow.toLocaleString('en-US')} jobs were queued in PostgreSQL afterwards (≥ the 202s: requests still in flight when a run ended are not counted by autocannon).`,
          `**Durable floor.** ${sf.rps.toLocaleString('en-US')} jobs/s (p50 ${sf.p50} ms, p99 ${sf.p99} ms per job, ${floorBatch} jobs per transaction), the rows in a tenant of their own, deleted after each run. ` +
            `CPU per job (ms, the run with the median total, from /proc, PostgreSQL = the postmaster and every child of it): POST /v1/jobs ${describeCpuPerUnit(sa.cpu_per_job)}; ` +
            `durable floor ${describeCpuPerUnit(sf.cpu_per_job)}; queue.add ${describeCpuPerUnit(sb.cpu_per_job)}.`,
          ...(contended.length
            ? [
                `**${contended.length} of ${runs.length} submission runs were disturbed** by other processes (> ${CONTENDED_CORES} cores): rounds ${contended.map((r) => `${r.round} ${r.label}`).join(', ')}.`,
              ]
            : [`No submission run was disturbed by other processes (each below ${CONTENDED_CORES} cores).`]),
          `**Training.** Median wall time ${jobSeconds} s through the API against ${plainSeconds} s for train() (its epoch loop: ${breakdown.plain_epoch_loop_s === undefined ? '—' : round(breakdown.plain_epoch_loop_s, 3)} s). ` +
            `Where the job's time went (medians): queued ${breakdown.queued_s} s (created → started), compute ${breakdown.compute_s} s (the worker's call to its compute child: rows over IPC, train(), the artifact back), ` +
            `worker's other work ${breakdown.worker_other_s} s (started → finished minus compute: reading the job, model and dataset rows, storing the version, the succeeded transition), ` +
            `API ${breakdown.api_s} s (request → job created, and job finished → answer: validation, the insert, the Prefer: wait wake-up, the answer). ` +
            `The job and train() made ${sameModel ? 'the same artifact (same sha256) every round' : 'different artifacts (sha256 differs)'}, with ${sameHp ? 'the same resolved hyperparameters' : 'DIFFERENT resolved hyperparameters'}.`,
          `**Memory.** ${js.smallJobs} one-row inference jobs on the tiny model (${TINY_DATA.n} rows × ${TINY_DATA.features} features, 3 epochs), ${js.smallConcurrency} submitted at a time with Prefer: wait, one worker with one compute child (${sameChild ? 'the same child throughout' : 'the child was REPLACED meanwhile'}): ` +
            `${js.smallJobs} jobs in ${smallSeconds} s. RSS in MiB, worker + compute child (worker / child), 1 s after the last job of each checkpoint, median of 5 samples 200 ms apart: ` +
            `${checkpoints.map((c) => `after ${c.jobs}: ${c.total_mib} (${c.worker_mib} / ${c.children_mib})`).join('; ')}. ` +
            (tensorsKnown
              ? `Tensors: the worker does not report them; read from the compute child through its inspector (opened by SIGUSR1 before the first job, so every reading pays for it): ` +
                `${checkpoints.map((c) => c.tfjs.numTensors).join(' → ')} tensors, ${tf10.numBytes} → ${tfN.numBytes} tensor bytes, wasm heap ${mib(tf10.wasmHeapBytes)} → ${mib(tfN.wasmHeapBytes)} MiB, ` +
                `child JS heap used ${checkpoints.map((c) => mib(c.tfjs.memoryUsage?.heapUsed)).join(' → ')} MiB (not collected first), ` +
                `child JS heap reserved (heapTotal) ${checkpoints.map((c) => mib(c.tfjs.memoryUsage?.heapTotal)).join(' → ')} MiB.`
              : `Tensor count not measured: the worker does not report it and its compute child's inspector could not be reached (${tf10.reason ?? tfN.reason}); RSS only.`),
        ],
      };
    } finally {
      await worker?.stop();
      // The submission runs leave thousands of queued jobs: the tenant goes, and its jobs with it,
      // so that the next scenario's workers do not spend the machine on them.
      for (const id of [tenantId, floorTenantId].filter((x) => api && x))
        await requestJson(`${api.url}/v1/admin/tenants/${id}`, { method: 'DELETE', token: env.ADMIN_API_KEY }).catch((err) =>
          step(`jobs: could not delete the bench tenant ${id}: ${err.message}`),
        );
      await api?.stop();
      await db.end().catch(() => undefined);
      if (profileDir) step(`jobs: CPU profile of the API written under ${profileDir}`);
    }
  },
};

/** CPU ms per job of the run with the median total (its groups add up to it), from cpuPerUnit results; undefined when none. */
function medianPerUnit(perJob) {
  const known = perJob.filter(Boolean).sort((a, b) => a.total - b.total);
  return known.length ? known[Math.floor((known.length - 1) / 2)] : undefined;
}

/** Cores used during a submission run by processes that are not part of it, live or exited. */
function disturbance(r) {
  return r.cpu ? round(r.cpu.cores_used.other + r.cpu.unattributed_cores, 2) : 0;
}

/** "4.1 waiting for the tenant lock (advisory), 2 active, …" */
function describeBackends(b) {
  return b
    ? Object.entries(b)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none'
    : 'not sampled';
}

function mib(bytes) {
  return typeof bytes === 'number' ? round(bytes / 2 ** 20, 1) : '—';
}
