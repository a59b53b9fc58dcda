// Scenario "inference": sync predictions, tiny inference jobs and fair scheduling, each figure
// beside a baseline measured in the same run.
//  1. Baseline: a raw BullMQ no-op worker's jobs per second (bench/bullmq-noop-runner.mjs: a Worker
//     with 64 concurrent no-op processors fed by addBulk, same Redis, a throwaway queue).
//  2. Sync predict: POST /v1/models/{id}/predict with `Prefer: wait` (one row per request) on the
//     real API and a real worker, autocannon at 1 and at 64 connections, with dynamic batching on
//     (the defaults) and off (PREDICT_BATCH_MAX_ROWS=1, the worker restarted): requests/s, p50, p99.
//  3. Mixed load: the same sync predict runs while a long training runs on the same worker.
//  4. Scale-out: N one-row inference jobs through POST /v1/jobs (64 in flight) until every one has
//     succeeded, with 1, 2 and 4 worker processes; jobs/s against the no-op worker, and CPU per job
//     of every process involved (the API, the workers, their children, PostgreSQL, Redis), from /proc.
//  5. Fairness: tenant A floods short training jobs on a two-slot worker; once A's work is flowing,
//     tenant B submits one job three times (after A finished 10, 30, 50). B's median wait in A's median job-lengths.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import {
  call,
  cpuPerUnit,
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
  /** sync predict requests/s at 64 clients, batching on ÷ off, at least */
  batching_ratio: 5,
  /** sync predict requests/s at 64 clients (batching on) ÷ no-op BullMQ jobs/s, at least */
  predict_vs_noop: 0.2,
  /** B's wait ÷ A's median job length, at most ("about one job-length per worker slot") */
  fairness_job_lengths: 1,
  /** tiny inference jobs/s with TINY_JOBS_WORKERS worker processes ÷ no-op BullMQ jobs/s, at least */
  tiny_jobs_vs_noop: 0.05,
};
/** Warm-up jobs per worker process before the tiny-jobs window opens. */
const TINY_WARMUP_JOBS = 100;
/** The worker count of the tiny-jobs figure that has a target (and the CPU per job in the table). */
const TINY_JOBS_WORKERS = 2;
const CLIENTS = [1, 64];
const DATA = { features: 4, classes: 3, seed: 5 };

/** BENCH_INFERENCE_SECONDS (5 s per predict run), BENCH_INFERENCE_JOBS (2,000), BENCH_FAIRNESS_FLOOD (200). */
export function inferenceSettings(env = process.env) {
  return {
    seconds: envNumber(env, 'BENCH_INFERENCE_SECONDS', 5, 1),
    jobs: envNumber(env, 'BENCH_INFERENCE_JOBS', 2_000, 10, true),
    flood: envNumber(env, 'BENCH_FAIRNESS_FLOOD', 200, 20, true),
  };
}

/** A worker as the inference figures run it (and the cluster scenario's stacks): wasm, two compute slots. */
export function startWorker(env, extra = {}) {
  return startProcess('dist/apps/worker/src/main.js', 'worker.ready', {
    env: { ...env, TF_BACKEND: 'wasm', WORKER_CONCURRENCY: '2', LOG_LEVEL: 'warn', ...extra },
    timeoutMs: 60_000,
  });
}

/** Runs `fn(i)` for i in [0, n) with at most `parallel` in flight. */
async function pool(n, parallel, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** One-row inference jobs submitted 64 at a time, waited for; seconds from the first submission to the last finished_at. */
async function runTinyJobs(db, tenant, row, count) {
  const ids = [];
  const t0 = Date.now();
  await pool(count, 64, async () => {
    const r = await tenant.call('POST', '/v1/jobs', { type: 'inference', model: 'inf', inputs: [row] });
    if (r.status !== 202) throw new Error(`inference job: expected 202, got ${r.status}: ${r.text.slice(0, 500)}`);
    ids.push(r.body.id);
  });
  for (;;) {
    const { rows: r } = await db.query(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS ok, count(*) FILTER (WHERE status IN ('failed', 'canceled'))::int AS bad, max(finished_at) AS last FROM jobs WHERE id = ANY($1)`,
      [ids],
    );
    if (r[0].bad) throw new Error(`${r[0].bad} tiny inference jobs failed`);
    if (r[0].ok === ids.length) return { ids, seconds: (new Date(r[0].last).getTime() - t0) / 1000 };
    if (Date.now() - t0 > 300_000) throw new Error('tiny inference jobs did not finish in 5 minutes');
    await sleep(100);
  }
}

async function noopRun(env, seconds) {
  const runner = await startProcess('bench/bullmq-noop-runner.mjs', 'noop.ready', {
    env: { ...env, NODE_OPTIONS: '', NOOP_SECONDS: String(seconds), NOOP_WARMUP: '1' },
    timeoutMs: 30_000,
  });
  try {
    process.kill(runner.proc.pid, 'SIGUSR2');
    const end = Date.now() + (seconds + 30) * 1000;
    for (;;) {
      const line = runner.output.find((l) => l.includes('"noop.result"'));
      if (line) return JSON.parse(line);
      if (Date.now() > end) throw new Error(`no-op runner gave no result:\n${runner.output.slice(-20).join('\n')}`);
      await sleep(50);
    }
  } finally {
    await runner.stop();
  }
}

export default {
  id: 'inference',
  title: 'Inference and scheduling: sync predict with dynamic batching, tiny inference jobs, fairness',

  async run({ env, settings }) {
    const is = inferenceSettings();
    const rounds = settings.rounds;
    const { blobRows } = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'synthetic.js')).href);
    const db = new pg.Client({ connectionString: env.DATABASE_URL });
    await db.connect();
    let api;
    let worker;
    try {
      step('inference: starting the API and a worker (wasm, WORKER_CONCURRENCY=2)');
      api = await startApi(env);
      const admin = env.ADMIN_API_KEY;
      const newTenant = async (name, quotas, plan = 'enterprise') => {
        const t = await requestJson(`${api.url}/v1/admin/tenants`, {
          method: 'POST',
          token: admin,
          body: {
            name,
            plan,
            quotas: { requests_per_minute: 100_000_000, max_queued_jobs: 100_000_000, monthly_compute_seconds: 100_000_000, ...quotas },
          },
        });
        const k = await requestJson(`${api.url}/v1/admin/tenants/${t.body.id}/api-keys`, { method: 'POST', token: admin, body: { name } });
        const secret = k.body.secret;
        return {
          id: t.body.id,
          secret,
          call: (method, path, body, headers) => call(`${api.url}${path}`, { method, token: secret, body, headers }),
        };
      };
      const must = (r, status, what) => {
        if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
        return r.body;
      };
      const t = await newTenant('bench-inference', { max_concurrent_jobs: 1_000 });
      const rows = blobRows(300, DATA);
      const ds = must(await t.call('POST', '/v1/datasets', { name: 'inf', task: 'classification', records: rows }), 201, 'dataset');
      const model = must(await t.call('POST', '/v1/models', { name: 'inf', task: 'classification' }), 201, 'model');
      worker = await startWorker(env);
      const trained = must(
        await t.call(
          'POST',
          '/v1/jobs',
          { type: 'training', model: 'inf', dataset: ds.id, hyperparameters: { epochs: 5, seed: 1 } },
          { Prefer: 'wait=60' },
        ),
        200,
        'training',
      );
      step(`inference: model ${model.id} v${trained.version} trained; worker ${worker.ready.id}`);
      const row = Object.fromEntries(Object.entries(rows[0]).filter(([k]) => k !== 'label'));

      // ── 1. the baseline ───────────────────────────────────────────────────────────────────────
      const noop = [];
      for (let i = 1; i <= rounds; i++) {
        const r = await noopRun(env, is.seconds);
        noop.push(r.rate);
        step(`inference: no-op BullMQ worker round ${i}/${rounds}: ${r.rate.toLocaleString('en-US')} jobs/s`);
      }
      const noopRate = median(noop);

      // ── 2. sync predict, batching on and off ─────────────────────────────────────────────────
      const predictTarget = {
        url: `${api.url}/v1/models/${model.id}/predict`,
        method: 'POST',
        headers: { authorization: `Bearer ${t.secret}`, 'content-type': 'application/json', prefer: 'wait=30' },
        body: JSON.stringify({ inputs: [row] }),
      };
      const predictRuns = [];
      const sameAnswers = {};
      for (const mode of ['on', 'off']) {
        if (mode === 'off') {
          await worker.stop();
          worker = await startWorker(env, { PREDICT_BATCH_MAX_ROWS: '1' });
        }
        const answer = must(
          await t.call(
            'POST',
            `/v1/models/${model.id}/predict`,
            { inputs: rows.slice(0, 20).map(({ label: _l, ...x }) => x) },
            { Prefer: 'wait=30' },
          ),
          200,
          `predict (batching ${mode})`,
        );
        sameAnswers[mode] = JSON.stringify(answer.predictions);
        await loadTest({ ...predictTarget, duration: 2, connections: 64, label: `warm-up ${mode}` });
        for (let i = 1; i <= rounds; i++) {
          for (const clients of CLIENTS) {
            const r = await loadTest({
              ...predictTarget,
              duration: is.seconds,
              connections: clients,
              label: `predict batching ${mode}, ${clients} client(s)`,
              serverPid: api.proc.pid,
            });
            if (r.non2xx || r.errors)
              throw new Error(
                `predict (batching ${mode}, ${clients} clients): ${r.non2xx} non-2xx, ${r.errors} errors: ${JSON.stringify(r.status_codes)}`,
              );
            predictRuns.push({ ...r, round: i, mode, clients });
            step(
              `inference: predict batching ${mode}, ${clients} client(s), round ${i}/${rounds}: ${r.rps.toLocaleString('en-US')} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms`,
            );
          }
        }
      }
      const pick = (mode, clients) => {
        const mine = predictRuns.filter((r) => r.mode === mode && r.clients === clients);
        return {
          rps: median(mine.map((r) => r.rps)),
          p50: median(mine.map((r) => r.latency_ms.p50)),
          p99: median(mine.map((r) => r.latency_ms.p99)),
        };
      };
      const on64 = pick('on', 64);
      const off64 = pick('off', 64);
      const on1 = pick('on', 1);
      const off1 = pick('off', 1);
      const batchingRatio = round(on64.rps / off64.rps, 2);
      const vsNoop = round(on64.rps / noopRate, 3);
      await worker.stop();
      worker = await startWorker(env);

      // ── 3. sync predict under mixed load: a training job running on the same worker ─────────────
      const big = must(
        await t.call('POST', '/v1/datasets', { name: 'mixed', task: 'classification', records: blobRows(4_000, DATA) }),
        201,
        'mixed-load dataset',
      );
      const training = must(
        await t.call('POST', '/v1/jobs', { type: 'training', model: 'inf', dataset: big.id, hyperparameters: { epochs: 200, seed: 2 } }),
        202,
        'mixed-load training',
      );
      for (const end = Date.now() + 60_000; (await t.call('GET', `/v1/jobs/${training.id}`)).body.status !== 'running'; ) {
        if (Date.now() > end) throw new Error('the mixed-load training did not start');
        await sleep(50);
      }
      const mixed = {};
      for (const clients of CLIENTS) {
        const r = await loadTest({
          ...predictTarget,
          duration: is.seconds,
          connections: clients,
          label: `predict under training, ${clients} client(s)`,
          serverPid: api.proc.pid,
        });
        if (r.non2xx || r.errors) throw new Error(`predict under training: ${r.non2xx} non-2xx, ${r.errors} errors`);
        mixed[clients] = { rps: r.rps, p50: r.latency_ms.p50, p99: r.latency_ms.p99 };
        step(
          `inference: predict with a training running, ${clients} client(s): ${r.rps.toLocaleString('en-US')} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms`,
        );
      }
      const stillTraining = (await t.call('GET', `/v1/jobs/${training.id}`)).body.status === 'running';
      await t.call('POST', `/v1/jobs/${training.id}/cancel`, {});
      await worker.stop();
      worker = undefined;

      // ── 4. tiny inference jobs end to end, with 1, 2 and 4 worker processes ────────────────────
      const scale = [];
      const services = await servicePids(db, env.REDIS_URL);
      for (const n of [1, 2, 4]) {
        const workers = await Promise.all(Array.from({ length: n }, () => startWorker(env, { WORKER_CONCURRENCY: '1' })));
        try {
          // A warm-up like the no-op runner's (NOOP_WARMUP): each fresh worker loads the model into its
          // inference child, opens its connections and compiles its hot paths before the window opens.
          await runTinyJobs(db, t, row, TINY_WARMUP_JOBS * n);
          // CPU of the API, the workers, their compute children, PostgreSQL and Redis from the first submission to the last success.
          const window = cpuWindow(
            withServices(services, {
              api: { pids: [api.proc.pid] },
              workers: { pids: workers.map((w) => w.proc.pid), descendants: 'children' },
            }),
            db,
          );
          const { ids, seconds } = await runTinyJobs(db, t, row, is.jobs);
          const cpuMs = await window.stop();
          const perJob = cpuPerUnit(cpuMs, ids.length);
          scale.push({ workers: n, seconds: round(seconds, 2), rate: round(ids.length / seconds, 1), cpu_ms: cpuMs, cpu_per_job: perJob });
          step(
            `inference: ${ids.length} tiny inference jobs with ${n} worker(s): ${round(seconds, 2)} s, ${round(ids.length / seconds, 1)} jobs/s, CPU per job ${describeCpuPerUnit(perJob)}`,
          );
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
        }
      }
      const jobsRate = Math.max(...scale.map((x) => x.rate));
      const tinyAt = scale.find((x) => x.workers === TINY_JOBS_WORKERS);
      const tinyRatio = round(tinyAt.rate / noopRate, 4);
      worker = await startWorker(env);

      // ── 5. fairness ──────────────────────────────────────────────────────────────────────────
      const a = await newTenant('bench-flood', { max_concurrent_jobs: 2 }, 'free');
      const b = await newTenant('bench-single', { max_concurrent_jobs: 2 }, 'free');
      const tiny = blobRows(60, { features: 2, classes: 2, seed: 5 });
      for (const x of [a, b]) {
        const d = must(await x.call('POST', '/v1/datasets', { name: 'f', task: 'classification', records: tiny }), 201, 'fairness dataset');
        must(await x.call('POST', '/v1/models', { name: 'f', task: 'classification' }), 201, 'fairness model');
        x.job = { type: 'training', model: 'f', dataset: d.id, hyperparameters: { epochs: 3, seed: 1 } };
      }
      await pool(is.flood, 32, async () => must(await a.call('POST', '/v1/jobs', a.job), 202, 'flood job'));
      const countA = async (status) =>
        (await db.query('SELECT count(*)::int AS n FROM jobs WHERE tenant_id = $1 AND status = $2', [a.id, status])).rows[0].n;
      // Three times during the flood (after A has finished 10, 30 and 50 jobs), B submits one job
      // and we note how long it waited; the median of the three is the figure.
      const trials = [];
      let aQueued = 0;
      for (const after of [10, 30, 50]) {
        while ((await countA('succeeded')) < Math.min(after, is.flood - 5)) await sleep(50);
        const queuedNow = await countA('queued');
        aQueued = Math.max(aQueued, queuedNow);
        const single = must(await b.call('POST', '/v1/jobs', b.job), 202, 'single job');
        let bRow;
        for (;;) {
          bRow = (await db.query('SELECT created_at, started_at FROM jobs WHERE id = $1', [single.id])).rows[0];
          if (bRow.started_at) break;
          await sleep(20);
        }
        trials.push({ wait_ms: bRow.started_at.getTime() - bRow.created_at.getTime(), a_queued: queuedNow });
      }
      await sleep(1_000);
      const lengths = (
        await db.query(
          `SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms FROM jobs WHERE tenant_id = $1 AND status = 'succeeded'`,
          [a.id],
        )
      ).rows.map((r) => Number(r.ms));
      const jobLength = round(median(lengths), 1);
      const waitMs = median(trials.map((x) => x.wait_ms));
      const waitLengths = round(waitMs / jobLength, 2);
      const fifoMs = round((aQueued * jobLength) / 2, 0);
      step(
        `inference: fairness: B waited ${trials.map((x) => x.wait_ms).join(', ')} ms (median ${waitMs} ms = ${waitLengths} of A's median job, ${jobLength} ms); up to ${aQueued} of A's jobs were queued (FIFO: ~${fifoMs} ms)`,
      );
      await worker.stop();
      worker = undefined;

      // ── the report ────────────────────────────────────────────────────────────────────────────
      const n = (x) => x.toLocaleString('en-US');
      const lat = (x) => `p50 ${x.p50} ms, p99 ${x.p99} ms`;
      const rowsOut = [
        {
          figure: 'sync predict at 64 clients: dynamic batching on vs off',
          measured: `${n(on64.rps)} req/s (${lat(on64)})`,
          baseline: `${n(off64.rps)} req/s (${lat(off64)})`,
          ratio: batchingRatio,
          target: `≥ ${TARGETS.batching_ratio}`,
          result: batchingRatio >= TARGETS.batching_ratio ? 'PASS' : 'BELOW',
        },
        {
          figure: 'sync predict at 1 client: dynamic batching on vs off',
          measured: `${n(on1.rps)} req/s (${lat(on1)})`,
          baseline: `${n(off1.rps)} req/s (${lat(off1)})`,
          ratio: round(on1.rps / off1.rps, 2),
          target: '—',
          result: '—',
        },
        {
          figure: 'sync predict at 64 clients (batching on) vs raw BullMQ no-op worker',
          measured: `${n(on64.rps)} predictions/s`,
          baseline: `${n(noopRate)} jobs/s`,
          ratio: vsNoop,
          target: `≥ ${TARGETS.predict_vs_noop}`,
          result: vsNoop >= TARGETS.predict_vs_noop ? 'PASS' : 'BELOW',
        },
        ...CLIENTS.map((clients) => ({
          figure: `sync predict at ${clients} client(s) while a training runs on the same worker vs without`,
          measured: `${n(mixed[clients].rps)} req/s (${lat(mixed[clients])})`,
          baseline: `${n(pick('on', clients).rps)} req/s (${lat(pick('on', clients))})`,
          ratio: round(mixed[clients].rps / pick('on', clients).rps, 2),
          target: '—',
          result: '—',
        })),
        ...scale.map((x) => ({
          figure: `tiny inference jobs end to end, ${x.workers} worker process(es) (${is.jobs} one-row jobs after ${TINY_WARMUP_JOBS * x.workers} of warm-up, 64 in flight) vs raw BullMQ no-op worker`,
          measured: `${n(x.rate)} jobs/s`,
          baseline: `${n(noopRate)} jobs/s`,
          ratio: round(x.rate / noopRate, 4),
          ...(x === tinyAt
            ? { target: `≥ ${TARGETS.tiny_jobs_vs_noop}`, result: tinyRatio >= TARGETS.tiny_jobs_vs_noop ? 'PASS' : 'BELOW' }
            : { target: '—', result: '—' }),
        })),
        {
          figure: `CPU per tiny inference job, ${TINY_JOBS_WORKERS} worker processes: the API, the workers, their children, PostgreSQL, Redis (/proc)`,
          measured: describeCpuPerUnit(tinyAt.cpu_per_job),
          baseline: '—',
          ratio: '—',
          target: '—',
          result: '—',
        },
        {
          figure: `fairness: tenant B's one job behind tenant A's flood of ${is.flood} (2 slots; median of 3 arrivals)`,
          measured: `${waitMs} ms wait (${trials.map((x) => x.wait_ms).join(', ')})`,
          baseline: `${jobLength} ms (A's median job)`,
          ratio: waitLengths,
          target: `≤ ${TARGETS.fairness_job_lengths} job-length`,
          result: waitLengths <= TARGETS.fairness_job_lengths ? 'PASS' : 'BELOW',
        },
      ];
      return {
        area: 'inference',
        title: this.title,
        description:
          `Baseline: a raw BullMQ Worker (64 concurrent no-op processors, addBulk feeder, same Redis), ${rounds} runs of ${is.seconds} s, median. ` +
          `Sync predict: autocannon POST /v1/models/{id}/predict, \`Prefer: wait=30\`, one row (4 features) per request, on the real API with one real worker (wasm, WORKER_CONCURRENCY=2), ` +
          `${rounds} rounds of ${is.seconds} s per client count, batching on (defaults) then off (PREDICT_BATCH_MAX_ROWS=1, worker restarted); medians. ` +
          `Mixed load: the same predict runs while a 200-epoch training on 4,000 rows runs on the same worker (its training child; predictions use the inference child). ` +
          `Tiny inference jobs: POST /v1/jobs inference with one row, 64 in flight, from the first submission to the last finished_at, with 1, 2 and 4 worker processes (WORKER_CONCURRENCY=1 each). ` +
          `Fairness: two free-plan tenants (cap 2) on a two-slot worker; A submits ${is.flood} 3-epoch trainings on 60 rows, B submits one job after A has finished 10, 30 and 50 (median of the three waits).`,
        columns: RATIO_COLUMNS,
        rows: rowsOut,
        checks: [
          {
            name: 'sync predict at 64 clients, batching on ÷ off',
            value: batchingRatio,
            target: `≥ ${TARGETS.batching_ratio}`,
            pass: batchingRatio >= TARGETS.batching_ratio,
            text: `${batchingRatio} (${n(on64.rps)} vs ${n(off64.rps)} req/s)`,
          },
          {
            name: 'sync predictions/s at 64 clients ÷ no-op BullMQ jobs/s',
            value: vsNoop,
            target: `≥ ${TARGETS.predict_vs_noop}`,
            pass: vsNoop >= TARGETS.predict_vs_noop,
            text: `${vsNoop} (${n(on64.rps)} vs ${n(noopRate)})`,
          },
          {
            name: `tiny inference jobs/s with ${TINY_JOBS_WORKERS} worker processes ÷ no-op BullMQ jobs/s`,
            value: tinyRatio,
            target: `≥ ${TARGETS.tiny_jobs_vs_noop}`,
            pass: tinyRatio >= TARGETS.tiny_jobs_vs_noop,
            text: `${tinyRatio} (${n(tinyAt.rate)} vs ${n(noopRate)} jobs/s; CPU per job ${describeCpuPerUnit(tinyAt.cpu_per_job)})`,
          },
          {
            name: "fairness: B's wait in A's job-lengths",
            value: waitLengths,
            target: `≤ ${TARGETS.fairness_job_lengths}`,
            pass: waitLengths <= TARGETS.fairness_job_lengths,
            text: `${waitLengths} (${waitMs} ms; FIFO would be ~${n(fifoMs)} ms)`,
          },
        ],
        figures: {
          targets: TARGETS,
          settings: is,
          noop_per_round: noop,
          predict: { on64, off64, on1, off1, same_predictions_on_and_off: sameAnswers.on === sameAnswers.off },
          mixed_load: { ...mixed, training_still_running_after: stillTraining },
          scale_out: scale,
          tiny_jobs_best_rate: jobsRate,
          fairness: { wait_ms: waitMs, trials, job_length_ms: jobLength, a_queued_when_b_arrived: aQueued, fifo_estimate_ms: fifoMs },
        },
        runs: predictRuns,
        notes: [
          `Batching on and off gave ${sameAnswers.on === sameAnswers.off ? 'identical' : '**different**'} predictions for the same 20 rows.`,
          `No-op BullMQ rounds: ${noop.map(n).join(', ')} jobs/s.`,
          `CPU per tiny inference job (ms, utime + stime from /proc from the first submission to the last success: the API, the worker processes, their children, PostgreSQL's postmaster and every child of it, redis-server): ` +
            `${scale.map((x) => `${x.workers} worker(s) ${describeCpuPerUnit(x.cpu_per_job)}`).join('; ')}.`,
        ],
      };
    } finally {
      await worker?.stop().catch(() => undefined);
      await api?.stop().catch(() => undefined);
      await db.end().catch(() => undefined);
    }
  },
};
