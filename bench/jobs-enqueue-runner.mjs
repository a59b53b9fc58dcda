// Child process of the "jobs" bench scenario (bench/jobs.mjs): the baseline of the job submission
// rate. Raw BullMQ `queue.add`, with JOBS_ENQUEUE_CONCURRENCY adds in flight at once (like the 50
// autocannon connections against POST /v1/jobs), into a throwaway queue under the run's Redis prefix
// on the same Redis. The Queue's connection options and the add's options are the API's own
// (libs/queue/src/job-queues.ts, `JobQueues`), so the only difference from the API's enqueue is
// everything else the API does per job (HTTP, auth, rate limit, validation, PostgreSQL).
//
//   REDIS_URL=… REDIS_PREFIX=bench-x JOBS_ENQUEUE_SECONDS=10 JOBS_ENQUEUE_WARMUP=2 \
//   JOBS_ENQUEUE_CONCURRENCY=50 JOBS_ENQUEUE_QUEUE=bench-enqueue node bench/jobs-enqueue-runner.mjs
//
// It connects and warms up for JOBS_ENQUEUE_WARMUP seconds, prints {"event":"jobs.enqueue.ready"},
// and waits for SIGUSR2 (JOBS_ENQUEUE_WAIT_SIGNAL=0: starts at once). Then it measures and prints
// ONE JSON line on stdout: {"event":"jobs.enqueue.result", adds, seconds, rate, latency_ms, errors, ...}
// and idles (up to JOBS_ENQUEUE_LINGER_MS, default 30 s) so that the parent can read its CPU time
// from /proc before it stops it; it exits on SIGTERM. Its jobs stay in Redis until the bench deletes
// the run's keys.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { root } from '../scripts/lib.mjs';
import { readyThenGo } from './runner-go.mjs';

const seconds = Number(process.env.JOBS_ENQUEUE_SECONDS ?? 10);
const warmup = Number(process.env.JOBS_ENQUEUE_WARMUP ?? 2);
const concurrency = Number(process.env.JOBS_ENQUEUE_CONCURRENCY ?? 50);
const queueName = process.env.JOBS_ENQUEUE_QUEUE ?? 'bench-enqueue';
const linger = Number(process.env.JOBS_ENQUEUE_LINGER_MS ?? 30_000);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPrefix = process.env.REDIS_PREFIX;
if (!redisPrefix) fail('REDIS_PREFIX is required (the bench run’s own prefix)');
if (!(seconds > 0) || !(warmup >= 0) || !(concurrency >= 1))
  fail('JOBS_ENQUEUE_SECONDS > 0, JOBS_ENQUEUE_WARMUP ≥ 0 and JOBS_ENQUEUE_CONCURRENCY ≥ 1');

// The API's prefix function, so that the throwaway queue sits beside the real ones ({prefix:bull:<queue>}:…).
const { bullPrefix } = await import(pathToFileURL(join(root, 'dist', 'libs', 'queue', 'src', 'jobs.js')).href);

// As JobQueues.queue() builds it.
const queue = new Queue(queueName, {
  connection: {
    url: redisUrl,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
  },
  prefix: bullPrefix({ redisPrefix }, queueName),
  skipWaitingForReady: true,
});
queue.on('error', () => undefined);
await queue.waitUntilReady();

// Unique ids across runner processes (a repeated id would be a no-op add, and too cheap).
const tag = randomBytes(3).toString('hex');
let seq = 0;
// As JobQueues.enqueue() adds a job: under its own id (16 characters after `job_`, like the API's), the payload, attempts, backoff, retention.
const addOne = () => {
  const jobId = `job_${tag}${String(seq++).padStart(10, '0')}`;
  return queue.add(
    'training',
    { jobId, tenantId: 'ten_benchbaseline0000' },
    {
      jobId,
      attempts: 3,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 3_600 },
      removeOnFail: { age: 7 * 24 * 3_600 },
    },
  );
};

/** `concurrency` loops, each adding one job after the other until `ms` have passed. */
async function run(ms, latencies) {
  const end = performance.now() + ms;
  let adds = 0;
  let errors = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await addOne();
        adds++;
        latencies?.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { adds, errors, seconds: (performance.now() - started) / 1000 };
}

if (warmup > 0) await run(warmup * 1000);
await readyThenGo('jobs.enqueue.ready', process.env.JOBS_ENQUEUE_WAIT_SIGNAL !== '0');
const latencies = [];
const cpuBefore = process.cpuUsage();
const r = await run(seconds * 1000, latencies);
const cpu = process.cpuUsage(cpuBefore);
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies.length ? round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))], 2) : null;
process.stdout.write(
  `${JSON.stringify({
    event: 'jobs.enqueue.result',
    queue: queueName,
    concurrency,
    adds: r.adds,
    errors: r.errors,
    seconds: round(r.seconds, 3),
    rate: round(r.adds / r.seconds, 0),
    latency_ms: {
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      avg: latencies.length ? round(latencies.reduce((a, b) => a + b, 0) / latencies.length, 2) : null,
      max: pct(100),
    },
    cores_used: round((cpu.user + cpu.system) / 1e6 / r.seconds, 2),
    waiting: await queue.getWaitingCount(),
  })}\n`,
);
await queue.close();

setTimeout(() => process.exit(0), linger);
process.on('SIGTERM', () => process.exit(0));

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function fail(message) {
  process.stderr.write(`jobs-enqueue-runner: ${message}\n`);
  process.exit(2);
}
