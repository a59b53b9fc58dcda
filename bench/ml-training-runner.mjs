// Child process of the "ml-training" bench scenario (bench/ml-training.mjs): runs libs/ml's
// throughput measurement (dist/libs/ml/bench/throughput.js) for ONE backend and ONE model, so that
// TF.js, its backend and the wasm heap live and die here, never in the bench process.
//
//   ML_BENCH_BACKEND=wasm ML_BENCH_MODEL=mlp ML_BENCH_ROUNDS=5 ML_BENCH_SCALE=1 node bench/ml-training-runner.mjs
//
// Progress lines go to stderr. The result is ONE JSON line on stdout:
//   {"event":"ml-training.result", backend, model, rounds, scale, tfjs, targets, training, predict, log, ...}
// After it, the process stays alive (idle) for up to ML_BENCH_LINGER_MS (default 30 s) so that the
// parent can read this process's CPU time from /proc before stopping it; it exits on SIGTERM.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../scripts/lib.mjs';

const backend = process.env.ML_BENCH_BACKEND ?? 'wasm';
const model = process.env.ML_BENCH_MODEL ?? 'mlp';
const rounds = Number(process.env.ML_BENCH_ROUNDS ?? 5);
const scale = Number(process.env.ML_BENCH_SCALE ?? 1);
const linger = Number(process.env.ML_BENCH_LINGER_MS ?? 30_000);
if (!['cpu', 'wasm'].includes(backend)) fail(`ML_BENCH_BACKEND must be cpu or wasm (got '${backend}')`);
if (!['mlp', 'text'].includes(model)) fail(`ML_BENCH_MODEL must be mlp or text (got '${model}')`);
if (!Number.isInteger(rounds) || rounds < 1) fail(`ML_BENCH_ROUNDS must be an integer ≥ 1 (got '${process.env.ML_BENCH_ROUNDS}')`);
if (!(scale > 0)) fail(`ML_BENCH_SCALE must be a number > 0 (got '${process.env.ML_BENCH_SCALE}')`);

const entry = join(root, 'dist', 'libs', 'ml', 'bench', 'throughput.js');
const { measureMlThroughput, TARGETS } = await import(pathToFileURL(entry).href);

const log = [];
const cpuBefore = process.cpuUsage();
const started = performance.now();
const report = await measureMlThroughput({
  backends: [backend],
  models: [model],
  rounds,
  scale,
  log: (line) => {
    log.push(line);
    process.stderr.write(`${line}\n`);
  },
});
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(
  `${JSON.stringify({
    event: 'ml-training.result',
    backend,
    model,
    rounds,
    scale,
    tfjs: report.tfjs,
    targets: TARGETS,
    training: report.training,
    predict: report.predict,
    log,
    seconds: Math.round(seconds * 10) / 10,
    // CPU time of this process over the measurement ÷ its wall time: ~1 when TF.js computes on one thread.
    cores_used: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100) / 100,
    rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
  })}\n`,
);

// Idle until the parent stops us (or give up waiting).
setTimeout(() => process.exit(0), linger);
process.on('SIGTERM', () => process.exit(0));

function fail(message) {
  process.stderr.write(`ml-training-runner: ${message}\n`);
  process.exit(2);
}
