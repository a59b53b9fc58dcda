// Child process of the "inference" bench scenario (bench/inference.mjs): the baseline of its
// throughput figures. A raw BullMQ Worker whose processor does nothing, fed by a Queue in the same
// process that keeps NOOP_BACKLOG jobs waiting (addBulk), on the run's Redis under its prefix. The
// figure is completed jobs per second: what BullMQ itself costs per job on this machine, with no
// HTTP, no PostgreSQL and no compute.
//
//   REDIS_URL=… REDIS_PREFIX=bench-x NOOP_SECONDS=10 NOOP_WARMUP=2 NOOP_CONCURRENCY=64 node bench/bullmq-noop-runner.mjs
//
// Prints {"event":"noop.ready"} once warmed up, waits for SIGUSR2 (NOOP_WAIT_SIGNAL=0: starts at
// once), measures, prints ONE line {"event":"noop.result", jobs, seconds, rate}, and exits.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { root } from '../scripts/lib.mjs';

const seconds = Number(process.env.NOOP_SECONDS ?? 10);
const warmup = Number(process.env.NOOP_WARMUP ?? 2);
const concurrency = Number(process.env.NOOP_CONCURRENCY ?? 64);
const backlog = Number(process.env.NOOP_BACKLOG ?? 1_000);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPrefix = process.env.REDIS_PREFIX;
if (!redisPrefix) {
  console.error('REDIS_PREFIX is required (the bench run’s own prefix)');
  process.exit(2);
}

const { bullPrefix } = await import(pathToFileURL(join(root, 'dist', 'libs', 'queue', 'src', 'jobs.js')).href);
const name = `bench-noop-${process.pid}`;
const prefix = bullPrefix({ redisPrefix }, name);
const connection = { url: redisUrl, maxRetriesPerRequest: null };
const queue = new Queue(name, { connection, prefix });
let completed = 0;
const worker = new Worker(name, async () => undefined, { connection, prefix, concurrency, removeOnComplete: { count: 0 } });
worker.on('completed', () => completed++);
worker.on('error', () => undefined);

// The feeder: tops the wait list up to `backlog` jobs, 250 at a time.
let feeding = true;
let seq = 0;
const feed = async () => {
  while (feeding) {
    const waiting = await queue.getWaitingCount();
    if (waiting < backlog) {
      await queue.addBulk(
        Array.from({ length: 250 }, () => ({ name: 'noop', data: { jobId: `noop_${seq++}` }, opts: { removeOnComplete: true } })),
      );
    } else {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
};
const feeding$ = feed();

// Listening for SIGUSR2 before saying ready: a signal with no listener would kill the process.
const go = process.env.NOOP_WAIT_SIGNAL === '0' ? Promise.resolve() : new Promise((r) => process.once('SIGUSR2', r));
await new Promise((r) => setTimeout(r, warmup * 1000));
process.stdout.write(`${JSON.stringify({ event: 'noop.ready' })}\n`);
await go;
const start = completed;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const jobs = completed - start;
const elapsed = (performance.now() - t0) / 1000;
feeding = false;
await feeding$;
process.stdout.write(
  `${JSON.stringify({ event: 'noop.result', jobs, seconds: elapsed, rate: Math.round(jobs / elapsed), concurrency })}\n`,
);
await worker.close(true);
await queue.obliterate({ force: true }).catch(() => undefined);
await queue.close();
process.exit(0);
