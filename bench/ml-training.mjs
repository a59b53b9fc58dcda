// Scenario "ml-training": training throughput of the libs/ml presets (MLP 32→128→128→4 and the
// text preset: vocabulary 20,000, embedding 64, sequence 64, batch 256) through libs/ml's `train()`
// against plain TF.js `model.fit` of the same model on the same data in the same run, per backend
// (cpu, wasm), plus predict latency. The measurement is libs/ml's own
// (dist/libs/ml/bench/throughput.js, `measureMlThroughput`); each backend × model runs in a child
// process of its own (bench/ml-training-runner.mjs), so TF.js state never enters the bench process.
import { cpuSnapshot, cpuUsage, envNumber, round, startProcess, step } from './harness.mjs';

/** Other processes using more than this many cores during a measurement make its figures suspect. */
const CONTENDED_CORES = 0.2;
const MODEL_NAMES = { mlp: 'MLP 32→128→128→4', text: 'text (vocabulary 20,000, embedding 64, sequence 64)' };

/**
 * BENCH_ML_BACKENDS (default wasm,cpu), BENCH_ML_ROUNDS (default 5), BENCH_ML_SCALE (default 1:
 * libs/ml's default sample counts), BENCH_ML_CPU_TEXT_ROUNDS (default 3) and BENCH_ML_CPU_TEXT_SCALE
 * (default BENCH_ML_SCALE) for the slow cpu text preset, BENCH_ML_TIMEOUT (s per child, default 600).
 */
export function mlSettings(env = process.env) {
  const num = (name, fallback, min, integer = false) => envNumber(env, name, fallback, min, integer);
  const backends = (env.BENCH_ML_BACKENDS || 'wasm,cpu')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const bad = backends.filter((b) => b !== 'cpu' && b !== 'wasm');
  if (bad.length || !backends.length) throw new Error(`BENCH_ML_BACKENDS must list cpu and/or wasm (got '${env.BENCH_ML_BACKENDS}')`);
  const rounds = num('BENCH_ML_ROUNDS', 5, 1, true);
  const scale = num('BENCH_ML_SCALE', 1, 0.01);
  return {
    backends: [...new Set(backends)],
    rounds,
    scale,
    cpuTextRounds: num('BENCH_ML_CPU_TEXT_ROUNDS', 3, 1, true),
    cpuTextScale: num('BENCH_ML_CPU_TEXT_SCALE', scale, 0.01),
    timeoutSeconds: num('BENCH_ML_TIMEOUT', 600, 10),
  };
}

/** Cores used during a measurement by processes that are not part of it, live or exited. */
function disturbance(cpu) {
  return cpu ? round(cpu.cores_used.other + cpu.cores_used.postgres + cpu.cores_used.redis + cpu.unattributed_cores, 2) : undefined;
}

/** Per-round libs/ml ÷ fit time from the measurement's log lines ("… round 2: libs/ml 14064/s, fit 13660/s"). */
function perRoundRatios(log) {
  const ratios = [];
  for (const line of log) {
    const m = /round \d+: libs\/ml (\d+)\/s, fit (\d+)\/s/.exec(line);
    if (m && Number(m[1]) > 0) ratios.push(round(Number(m[2]) / Number(m[1]), 3));
  }
  return ratios;
}

export default {
  id: 'ml-training',
  title: 'ML: libs/ml training vs plain TF.js model.fit, and predict',

  async run() {
    const ml = mlSettings();
    const jobs = ml.backends.flatMap((backend) =>
      ['mlp', 'text'].map((model) => {
        const cpuText = backend === 'cpu' && model === 'text';
        return { backend, model, rounds: cpuText ? ml.cpuTextRounds : ml.rounds, scale: cpuText ? ml.cpuTextScale : ml.scale };
      }),
    );
    const results = [];
    for (const job of jobs) {
      step(`ml-training: ${job.backend} ${job.model}, ${job.rounds} rounds, scale ${job.scale}, in a child process`);
      const before = cpuSnapshot();
      const child = await startProcess('bench/ml-training-runner.mjs', 'ml-training.result', {
        env: {
          ...process.env,
          NODE_OPTIONS: '',
          ML_BENCH_BACKEND: job.backend,
          ML_BENCH_MODEL: job.model,
          ML_BENCH_ROUNDS: String(job.rounds),
          ML_BENCH_SCALE: String(job.scale),
        },
        timeoutMs: ml.timeoutSeconds * 1000,
      });
      // The child idles after its result line, so /proc still holds its CPU time here.
      const cpu = cpuUsage(before, cpuSnapshot(), { server: child.proc.pid });
      const code = await child.stop();
      if (code !== 0 && code !== null) throw new Error(`ml-training-runner (${job.backend} ${job.model}) exited with ${code}`);
      const r = child.ready;
      const t = r.training.find((f) => f.backend === job.backend && f.model === job.model);
      const p = r.predict.find((f) => f.backend === job.backend && f.model === job.model);
      if (!t || !p) throw new Error(`ml-training-runner (${job.backend} ${job.model}) returned no figure: ${JSON.stringify(r)}`);
      const result = { ...job, result: r, training: t, predict: p, cpu, other_cores: disturbance(cpu), ratios: perRoundRatios(r.log) };
      results.push(result);
      for (const line of r.log) step(`ml-training:   ${line}`);
      step(
        `ml-training: ${job.backend} ${job.model}: libs/ml ${t.libs_ml_samples_per_second} samples/s, fit ${t.plain_fit_samples_per_second}, ` +
          `time ratio ${t.time_ratio}; predict 1 row ${p.one_row_ms_p50} ms, 256 rows ${p.batch_256_rows_per_second} rows/s; ` +
          `${r.seconds} s` +
          (cpu ? `, child ${cpu.cores_used.server} cores, other processes ${result.other_cores} cores` : ''),
      );
      if (result.other_cores > CONTENDED_CORES) {
        console.warn(
          `  \x1b[33mwarning:\x1b[0m other processes used ${result.other_cores} cores during this measurement (${cpu.top_other.join(', ') || 'short-lived processes'}): figures are disturbed`,
        );
      }
    }

    const targets = results[0].result.targets;
    const maxRatio = targets.max_ratio;
    const rows = results.map(({ backend, model, training: t, predict: p, other_cores }) => {
      const target = backend === 'wasm' ? targets.wasm[model] : null;
      return {
        backend,
        model: MODEL_NAMES[model],
        samples: `${t.samples.toLocaleString('en-US')} × ${t.epochs}`,
        rounds: t.rounds,
        libs_ml: t.libs_ml_samples_per_second,
        fit: t.plain_fit_samples_per_second,
        // As text: the report's number format would print 0.996 as "1".
        ratio: t.time_ratio.toFixed(3),
        end_to_end: t.libs_ml_end_to_end_samples_per_second,
        target: target === null ? '—' : `≥ ${target.toLocaleString('en-US')}: ${t.libs_ml_samples_per_second >= target ? 'PASS' : 'BELOW'}`,
        one_row_ms: p.one_row_ms_p50,
        batch_rows_s: p.batch_256_rows_per_second,
        other_cores,
      };
    });
    const checks = [];
    for (const { backend, model, training: t, ratios } of results) {
      checks.push({
        name: `${backend} ${model}: libs/ml time ÷ plain fit time`,
        value: t.time_ratio,
        target: `≤ ${maxRatio.toFixed(2)}`,
        pass: t.time_ratio <= maxRatio,
        text: `${t.time_ratio}${ratios.length ? ` (per round: ${ratios.join(', ')})` : ''}`,
      });
    }
    for (const { backend, model, training: t } of results) {
      if (backend !== 'wasm') continue;
      const target = targets.wasm[model];
      checks.push({
        name: `wasm ${model}: training samples/s through libs/ml`,
        value: t.libs_ml_samples_per_second,
        target: `≥ ${target.toLocaleString('en-US')} on wasm`,
        pass: t.libs_ml_samples_per_second >= target,
        text: t.libs_ml_samples_per_second.toLocaleString('en-US'),
      });
    }
    const contended = results.filter((r) => r.other_cores > CONTENDED_CORES);
    const first = results[0].result;
    return {
      area: 'ml-training',
      title: this.title,
      description:
        'Training samples/s (samples × epochs ÷ time of the epoch loop) of the libs/ml presets through `train()` against plain TF.js ' +
        '`model.fit` of the same model on the same encoded data, batch 256, Adam, alternating which goes first in each round; ' +
        'medians of the rounds. Predict: a `LoadedModel` of the trained artifact, one row (median of 200 calls) and a batch of 256 rows. ' +
        'Each backend × model runs in a child process of its own (`bench/ml-training-runner.mjs` → `dist/libs/ml/bench/throughput.js`).',
      columns: [
        { key: 'backend', label: 'backend', align: 'left' },
        { key: 'model', label: 'model', align: 'left' },
        { key: 'samples', label: 'samples × epochs' },
        { key: 'rounds', label: 'rounds' },
        { key: 'libs_ml', label: 'libs/ml samples/s' },
        { key: 'fit', label: 'plain fit samples/s' },
        { key: 'ratio', label: 'libs/ml ÷ fit time' },
        { key: 'end_to_end', label: 'end to end samples/s' },
        { key: 'target', label: 'target (wasm)' },
        { key: 'one_row_ms', label: 'predict 1 row p50 ms' },
        { key: 'batch_rows_s', label: 'predict 256 rows: rows/s' },
        { key: 'other_cores', label: 'other cores' },
      ],
      rows,
      checks,
      figures: {
        tfjs: first.tfjs,
        targets,
        settings: ml,
        results: results.map(({ backend, model, rounds, scale, training, predict, ratios, other_cores, cpu, result }) => ({
          backend,
          model,
          rounds,
          scale,
          training,
          predict,
          ratio_per_round: ratios,
          seconds: result.seconds,
          child_cores: result.cores_used,
          child_rss_mib: result.rss_mib,
          other_cores,
          cpu,
          log: result.log,
        })),
      },
      notes: [
        ...(contended.length
          ? [
              `**${contended.length} of ${results.length} measurements were disturbed** by other processes (> ${CONTENDED_CORES} cores): ${contended.map((r) => `${r.backend} ${r.model} (${r.other_cores})`).join(', ')}.`,
            ]
          : [`No measurement was disturbed by other processes (each below ${CONTENDED_CORES} cores).`]),
        `TF.js ${first.tfjs}. Rounds ${ml.rounds} and scale ${ml.scale}` +
          (ml.backends.includes('cpu') ? `; cpu text: rounds ${ml.cpuTextRounds}, scale ${ml.cpuTextScale}` : '') +
          ' (BENCH_ML_ROUNDS, BENCH_ML_SCALE, BENCH_ML_CPU_TEXT_ROUNDS, BENCH_ML_CPU_TEXT_SCALE). BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS and BENCH_ROUNDS do not apply here.',
        `Child processes: ${results.map((r) => `${r.backend} ${r.model} ${r.result.seconds} s, ${r.result.cores_used} cores, RSS ${r.result.rss_mib} MiB`).join('; ')}.`,
        '"other cores" = CPU used during the measurement by every process but its child (and the idle bench process), exited processes included. TF.js computes on one thread (the child shows 1.0–1.3 cores with GC and helper threads), so on 2 cores some other load is absorbed by the second core, but not all of it.',
      ],
    };
  },
};
