// Child process of the "jobs" bench scenario (bench/jobs.mjs): the baseline of the training job
// wall time. Plain libs/ml `train()` (dist/libs/ml, the code the worker's compute child runs) of
// the same model on the same rows with the same hyperparameters as the training job that the
// scenario submits through the API, without the API, the queue, the worker, PostgreSQL or IPC.
//
//   JOBS_TRAIN_ROWS=5000 JOBS_TRAIN_FEATURES=8 JOBS_TRAIN_CLASSES=3 JOBS_TRAIN_SEED=11 \
//   JOBS_TRAIN_HYPERPARAMETERS='{"epochs":10,"seed":7}' TF_BACKEND=wasm node bench/jobs-train-runner.mjs
//
// The rows are libs/ml's seeded `blobRows` (the scenario uploads the same call's rows as JSON
// records), passed through JSON as the API and the dataset store pass them. Before the measured
// call it trains once for 1 epoch on the same rows (the worker's compute child is warm too: it has
// run earlier jobs), prints {"event":"jobs.train.ready"} and waits for SIGUSR2
// (JOBS_TRAIN_WAIT_SIGNAL=0: goes on at once). Progress goes to stderr; the result is ONE JSON line on stdout:
//   {"event":"jobs.train.result", seconds, duration_seconds, sha256, hyperparameters, metrics, ...}
// Then it idles (up to JOBS_TRAIN_LINGER_MS, default 30 s) so that the parent can read its CPU time
// from /proc; it exits on SIGTERM.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../scripts/lib.mjs';

const n = Number(process.env.JOBS_TRAIN_ROWS ?? 5000);
const features = Number(process.env.JOBS_TRAIN_FEATURES ?? 8);
const classes = Number(process.env.JOBS_TRAIN_CLASSES ?? 3);
const seed = Number(process.env.JOBS_TRAIN_SEED ?? 11);
const hyperparameters = JSON.parse(process.env.JOBS_TRAIN_HYPERPARAMETERS ?? '{"epochs":10,"seed":7}');
const linger = Number(process.env.JOBS_TRAIN_LINGER_MS ?? 30_000);

const dist = (...p) => pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', ...p)).href;
const ml = await import(dist('index.js'));
const { blobRows } = await import(dist('synthetic.js'));

const backend = await ml.initBackend(process.env.TF_BACKEND || 'wasm');
const rows = JSON.parse(JSON.stringify(blobRows(n, { features, classes, seed })));
const spec = { task: 'classification', label: 'label' };

// Warm-up: the same data and model, one epoch.
const w0 = performance.now();
await ml.train({ spec, rows, hyperparameters: { ...hyperparameters, epochs: 1 } });
process.stderr.write(`jobs-train-runner: warm-up (1 epoch) ${((performance.now() - w0) / 1000).toFixed(2)} s\n`);

// Warm: say so, and train when the parent says (SIGUSR2), so that it can bracket the measured call
// with its own /proc snapshots.
// (A signal listener alone does not keep Node's event loop alive: the timer does, for at most 10 minutes.)
const go = new Promise((resolve) => {
  const timer = setTimeout(resolve, 600_000);
  process.once('SIGUSR2', () => {
    clearTimeout(timer);
    resolve();
  });
});
process.stdout.write(`${JSON.stringify({ event: 'jobs.train.ready', pid: process.pid })}\n`);
if (process.env.JOBS_TRAIN_WAIT_SIGNAL !== '0') await go;

const cpuBefore = process.cpuUsage();
const t0 = performance.now();
const result = await ml.train({ spec, rows, hyperparameters });
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpuBefore);
process.stderr.write(`jobs-train-runner: train() ${seconds.toFixed(2)} s\n`);
process.stdout.write(
  `${JSON.stringify({
    event: 'jobs.train.result',
    backend: backend.name,
    rows: n,
    features,
    classes,
    seconds: round(seconds, 3),
    // libs/ml's own figure: train() from its start to the artifact (what TrainResult reports)
    duration_seconds: result.duration_seconds,
    // the epoch loop alone
    loop_seconds: result.history.at(-1)?.elapsed_seconds,
    sha256: result.sha256,
    hyperparameters: result.hyperparameters,
    metrics: { accuracy: result.metrics.accuracy, loss: result.metrics.loss },
    parameters: result.parameters,
    train_samples: result.train_samples,
    cores_used: round((cpu.user + cpu.system) / 1e6 / seconds, 2),
    rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
  })}\n`,
);

setTimeout(() => process.exit(0), linger);
process.on('SIGTERM', () => process.exit(0));

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
