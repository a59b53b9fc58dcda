// Child process of the "jobs" bench scenario (bench/jobs.mjs): the durable floor of the job
// submission rate. Plain `pg` writes what an accepted POST /v1/jobs writes (prisma/migrations/
// *_admit_job: one `jobs` row, queued, and its `job.queued` event, number 1), with
// JOBS_FLOOR_CONCURRENCY jobs in flight (like the 50 autocannon connections), into the bench's
// database. Jobs wait in one list; each of JOBS_FLOOR_CONNECTIONS connections (default 10, the API's
// pool) takes whatever is waiting when it is free and writes it in one transaction: one multi-row
// INSERT of jobs and one of events. No HTTP, no auth, no quota checks, no tenant lock, no Redis:
// what committing the rows costs, in batches, at the same concurrency.
//
//   DATABASE_URL=… JOBS_FLOOR_TENANT=ten_… JOBS_FLOOR_MODEL=mdl_… JOBS_FLOOR_DATASET=ds_… \
//   JOBS_FLOOR_HYPERPARAMETERS='{"epochs":5}' JOBS_FLOOR_SECONDS=10 JOBS_FLOOR_WARMUP=2 \
//   JOBS_FLOOR_CONCURRENCY=50 node bench/jobs-floor-runner.mjs
//
// It connects and warms up for JOBS_FLOOR_WARMUP seconds, prints {"event":"jobs.floor.ready"}, and
// waits for SIGUSR2. Then it measures and prints ONE JSON line on stdout: {"event":"jobs.floor.result",
// jobs, seconds, rate, transactions, mean_batch, latency_ms, errors} and idles (up to
// JOBS_FLOOR_LINGER_MS, default 30 s) so that the parent can read its CPU time from /proc before it
// stops it; it exits on SIGTERM. Its rows stay in the database until the bench deletes them.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { root } from '../scripts/lib.mjs';
import { readyThenGo } from './runner-go.mjs';

const env = process.env;
const seconds = Number(env.JOBS_FLOOR_SECONDS ?? 10);
const warmup = Number(env.JOBS_FLOOR_WARMUP ?? 2);
const concurrency = Number(env.JOBS_FLOOR_CONCURRENCY ?? 50);
const connections = Number(env.JOBS_FLOOR_CONNECTIONS ?? 10);
const linger = Number(env.JOBS_FLOOR_LINGER_MS ?? 30_000);
for (const name of ['DATABASE_URL', 'JOBS_FLOOR_TENANT', 'JOBS_FLOOR_MODEL', 'JOBS_FLOOR_DATASET'])
  if (!env[name]) fail(`${name} is required`);
if (!(seconds > 0) || !(warmup >= 0) || !(concurrency >= 1) || !(connections >= 1))
  fail('JOBS_FLOOR_SECONDS > 0, JOBS_FLOOR_WARMUP ≥ 0, JOBS_FLOOR_CONCURRENCY ≥ 1 and JOBS_FLOOR_CONNECTIONS ≥ 1');

// The API's ids (job_/evt_ + 16 base62 characters), so that keys and index entries are the same size.
const { newId } = await import(pathToFileURL(join(root, 'dist', 'libs', 'common', 'src', 'ids.js')).href);

// The columns aiaas_admit_job writes for the bench's training body; the NULL columns are NULL there too.
const JOB_COLUMNS =
  'id, tenant_id, type, model_id, version, alias, dataset_id, hyperparameters, architecture, base_version, accelerator, metadata, inputs, explain, webhook_url, webhook_events, max_attempts, event_seq, updated_at';
const hyperparameters = env.JOBS_FLOOR_HYPERPARAMETERS ?? '{}';

/** One multi-row INSERT of jobs and one of their events, in one transaction. */
async function writeBatch(client, ids) {
  const jobParams = [];
  const jobRows = ids.map(({ job }, i) => {
    jobParams.push(
      job,
      env.JOBS_FLOOR_TENANT,
      'training',
      env.JOBS_FLOOR_MODEL,
      env.JOBS_FLOOR_DATASET,
      hyperparameters,
      '{}',
      false,
      [],
      3,
    );
    const p = (k) => `$${i * 10 + k}`;
    return `(${p(1)}, ${p(2)}, ${p(3)}::"JobType", ${p(4)}, NULL, NULL, ${p(5)}, ${p(6)}::jsonb, NULL, NULL, NULL, ${p(7)}::jsonb, NULL, ${p(8)}, NULL, ${p(9)}::text[], ${p(10)}, 1, now())`;
  });
  const eventParams = ids.flatMap(({ job, event }) => [event, job]);
  const eventRows = ids.map((_, i) => `($${2 * i + 1}, $${2 * i + 2}, 1, 'job.queued', '{}'::jsonb)`);
  await client.query('BEGIN');
  try {
    await client.query(`INSERT INTO jobs (${JOB_COLUMNS}) VALUES ${jobRows.join(', ')}`, jobParams);
    await client.query(`INSERT INTO job_events (id, job_id, seq, type, data) VALUES ${eventRows.join(', ')}`, eventParams);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

// Jobs waiting for a connection, and the connections waiting for jobs.
const waiting = [];
const idle = [];
let transactions = 0;

/** Hands one job to the writers; resolves once its transaction has committed. */
function submit() {
  return new Promise((resolve, reject) => {
    waiting.push({ ids: { job: newId('job'), event: newId('evt') }, resolve, reject });
    idle.shift()?.();
  });
}

/** One connection's loop: take every waiting job, write them in one transaction, repeat. */
async function writer(client) {
  for (;;) {
    if (!waiting.length) await new Promise((r) => idle.push(r));
    const batch = waiting.splice(0, waiting.length);
    if (!batch.length) continue;
    try {
      await writeBatch(
        client,
        batch.map((b) => b.ids),
      );
      transactions++;
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}

/** `concurrency` loops, each submitting one job after the other until `ms` have passed. */
async function run(ms, latencies) {
  const end = performance.now() + ms;
  const txBefore = transactions;
  let jobs = 0;
  let errors = 0;
  let lastError;
  const loop = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await submit();
        jobs++;
        latencies?.push(performance.now() - t);
      } catch (err) {
        errors++;
        lastError = err.message;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { jobs, errors, lastError, transactions: transactions - txBefore, seconds: (performance.now() - started) / 1000 };
}

const clients = await Promise.all(
  Array.from({ length: connections }, async () => {
    const c = new pg.Client({ connectionString: env.DATABASE_URL });
    await c.connect();
    return c;
  }),
);
for (const c of clients) writer(c);

if (warmup > 0) await run(warmup * 1000);
await readyThenGo('jobs.floor.ready');
const latencies = [];
const r = await run(seconds * 1000, latencies);
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies.length ? round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))], 2) : null;
process.stdout.write(
  `${JSON.stringify({
    event: 'jobs.floor.result',
    concurrency,
    connections,
    jobs: r.jobs,
    errors: r.errors,
    last_error: r.lastError,
    seconds: round(r.seconds, 3),
    rate: round(r.jobs / r.seconds, 0),
    transactions: r.transactions,
    mean_batch: r.transactions ? round(r.jobs / r.transactions, 1) : null,
    latency_ms: {
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      avg: latencies.length ? round(latencies.reduce((a, b) => a + b, 0) / latencies.length, 2) : null,
      max: pct(100),
    },
  })}\n`,
);

setTimeout(() => process.exit(0), linger);
process.on('SIGTERM', () => process.exit(0));

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function fail(message) {
  process.stderr.write(`jobs-floor-runner: ${message}\n`);
  process.exit(2);
}
