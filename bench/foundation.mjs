// Scenario "foundation": foundation models through the real API and a real worker, each figure
// beside a baseline measured in the same run.
//  1. Embeddings: POST /v1/embeddings with a batch of 16 short texts, autocannon at 1 and 32
//     clients, embeddings/s, against the encoder alone in a plain child process embedding the same
//     16 texts back to back (bench/encoder-runner.mjs: no API, queue or worker).
//  2. Transfer learning: a training job with base_model on 2,000 short texts, the first with a cold
//     feature cache (the encoder reads every text), the second with a warm one (features read back).
//  3. Sync predict on the transfer-learned version: p50 and p99 at 1 and 16 clients.
import { benchTenant, envNumber, loadTest, median, RATIO_COLUMNS, round, startApi, startProcess, step } from './harness.mjs';

export const TARGETS = {
  /** API embeddings/s at 32 clients ÷ the encoder alone, at least */
  embeddings_vs_encoder: 0.7,
};
const USE = 'universal-sentence-encoder-lite';
const WORDS = [
  'market',
  'river',
  'engine',
  'garden',
  'music',
  'election',
  'winter',
  'doctor',
  'coffee',
  'planet',
  'league',
  'recipe',
  'storm',
  'museum',
  'bridge',
  'school',
];
/** A deterministic short sentence: different texts, similar lengths (about 12 tokens). */
const sentence = (i) =>
  `The ${WORDS[i % 16]} near the ${WORDS[(i * 7 + 3) % 16]} changed after the ${WORDS[(i * 5 + 1) % 16]} report number ${i}.`;

/** BENCH_FOUNDATION_SECONDS (5 s per load run), BENCH_TRANSFER_ROWS (2,000). */
export function foundationSettings(env = process.env) {
  return { seconds: envNumber(env, 'BENCH_FOUNDATION_SECONDS', 5, 1), rows: envNumber(env, 'BENCH_TRANSFER_ROWS', 2_000, 50, true) };
}

async function encoderAlone(env, texts, seconds) {
  const runner = await startProcess('bench/encoder-runner.mjs', 'encoder.result', {
    env: { ...env, NODE_OPTIONS: '', ENCODER_SECONDS: String(seconds), ENCODER_TEXTS: JSON.stringify(texts) },
    timeoutMs: 120_000,
  });
  await runner.stop();
  return runner.ready;
}

export default {
  id: 'foundation',
  title: 'Foundation models: embeddings through the API vs the encoder alone, the feature cache, transfer-learned predictions',

  async run({ env, settings }) {
    const fs = foundationSettings();
    const rounds = settings.rounds;
    let api;
    let worker;
    try {
      step('foundation: the encoder alone (a plain process, wasm)');
      const texts = Array.from({ length: 16 }, (_, i) => sentence(i));
      const alone = [];
      for (let i = 1; i <= rounds; i++) {
        const r = await encoderAlone(env, texts, fs.seconds);
        alone.push(r.embeddings_per_s);
        step(`foundation: encoder alone round ${i}/${rounds}: ${r.embeddings_per_s} embeddings/s (${r.ms_per_batch} ms per batch of 16)`);
      }
      const encoderRate = median(alone);

      api = await startApi(env);
      worker = await startProcess('dist/apps/worker/src/main.js', 'worker.ready', {
        env: { ...env, TF_BACKEND: 'wasm', LOG_LEVEL: 'warn' },
        timeoutMs: 60_000,
      });
      const { secret, t, must } = await benchTenant(api, env, 'bench-foundation');
      must(await t('POST', '/v1/embeddings', { model: USE, input: texts }), 200, 'warm-up embeddings');

      // ── 1. embeddings through the API ─────────────────────────────────────────────────────────
      const target = {
        url: `${api.url}/v1/embeddings`,
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: USE, input: texts, encoding_format: 'base64' }),
      };
      // A run's last requests are still queued on the worker when autocannon stops: let them finish
      // before the next run, or its first requests wait behind them.
      const settle = async () => {
        for (const end = Date.now() + 30_000; Date.now() < end; ) {
          const t0 = Date.now();
          must(await t('POST', '/v1/embeddings', { model: USE, input: texts }), 200, 'settling embeddings');
          if (Date.now() - t0 < 500) return;
        }
      };
      await loadTest({ ...target, duration: 2, connections: 32, label: 'embeddings warm-up' });
      const runs = [];
      for (let i = 1; i <= rounds; i++) {
        for (const clients of [1, 32]) {
          await settle();
          const r = await loadTest({
            ...target,
            duration: fs.seconds,
            connections: clients,
            label: `embeddings, ${clients} client(s)`,
            serverPid: api.proc.pid,
          });
          if (r.non2xx || r.errors)
            throw new Error(`embeddings (${clients} clients): ${r.non2xx} non-2xx, ${r.errors} errors: ${JSON.stringify(r.status_codes)}`);
          runs.push({ ...r, clients, embeddings_per_s: r.rps * texts.length });
          step(
            `foundation: embeddings, ${clients} client(s), round ${i}/${rounds}: ${r.rps * texts.length} embeddings/s (p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms)`,
          );
        }
      }
      const pick = (clients) => {
        const mine = runs.filter((r) => r.clients === clients);
        return {
          rate: median(mine.map((r) => r.embeddings_per_s)),
          p50: median(mine.map((r) => r.latency_ms.p50)),
          p99: median(mine.map((r) => r.latency_ms.p99)),
        };
      };
      const at1 = pick(1);
      const at32 = pick(32);
      const ratio32 = round(at32.rate / encoderRate, 2);

      // ── 2. transfer learning: a cold and a warm feature cache ───────────────────────────────────
      const records = Array.from({ length: fs.rows }, (_, i) => ({ text: sentence(i * 13 + 5), label: ['a', 'b', 'c'][(i * 7) % 3] }));
      const ds = must(await t('POST', '/v1/datasets', { name: 'tl', task: 'text-classification', records }), 201, 'dataset');
      must(await t('POST', '/v1/models', { name: 'tl', task: 'text-classification' }), 201, 'model');
      const trainOnce = async () => {
        const answer = await t(
          'POST',
          '/v1/jobs',
          { type: 'training', model: 'tl', dataset: ds.id, base_model: USE, hyperparameters: { seed: 1 } },
          { Prefer: 'wait=60' },
        );
        // 200 when it ended within the wait, else 202 and polled
        const job = must(answer, answer.status === 202 ? 202 : 200, 'transfer training');
        let row = job;
        while (row.status === 'queued' || row.status === 'running') {
          await new Promise((r) => setTimeout(r, 200));
          row = must(await t('GET', `/v1/jobs/${job.id}`), 200, 'job');
        }
        if (row.status !== 'succeeded') throw new Error(`transfer training ${row.status}: ${JSON.stringify(row.error)}`);
        return (new Date(row.finished_at).getTime() - new Date(row.started_at).getTime()) / 1000;
      };
      await settle();
      const cold = await trainOnce();
      const warm = await trainOnce();
      step(`foundation: transfer training on ${fs.rows} texts: cold cache ${cold} s, warm ${warm} s`);

      // ── 3. sync predict on the transfer-learned version ─────────────────────────────────────────
      const predict = {
        url: `${api.url}/v1/models/tl/predict`,
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', prefer: 'wait=30' },
        body: JSON.stringify({ inputs: [{ text: sentence(99) }] }),
      };
      must(await t('POST', '/v1/models/tl/predict', { inputs: [{ text: sentence(1) }] }, { Prefer: 'wait=30' }), 200, 'transfer predict');
      const tlPredict = {};
      for (const clients of [1, 16]) {
        const r = await loadTest({
          ...predict,
          duration: fs.seconds,
          connections: clients,
          label: `transfer predict, ${clients} client(s)`,
          serverPid: api.proc.pid,
        });
        if (r.non2xx || r.errors) throw new Error(`transfer predict: ${r.non2xx} non-2xx, ${r.errors} errors`);
        tlPredict[clients] = { rps: r.rps, p50: r.latency_ms.p50, p99: r.latency_ms.p99 };
        step(
          `foundation: transfer-learned predict, ${clients} client(s): ${r.rps} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms`,
        );
      }

      const n = (x) => x.toLocaleString('en-US');
      const rows = [
        {
          figure: 'embeddings at 32 clients (16 texts a request) vs the encoder alone',
          measured: `${n(at32.rate)} embeddings/s (p50 ${at32.p50} ms, p99 ${at32.p99} ms)`,
          baseline: `${n(encoderRate)} embeddings/s`,
          ratio: ratio32,
          target: `≥ ${TARGETS.embeddings_vs_encoder}`,
          result: ratio32 >= TARGETS.embeddings_vs_encoder ? 'PASS' : 'BELOW',
        },
        {
          figure: 'embeddings at 1 client (16 texts a request) vs the encoder alone',
          measured: `${n(at1.rate)} embeddings/s (p50 ${at1.p50} ms, p99 ${at1.p99} ms)`,
          baseline: `${n(encoderRate)} embeddings/s`,
          ratio: round(at1.rate / encoderRate, 2),
          target: '—',
          result: '—',
        },
        {
          figure: `transfer training on ${n(fs.rows)} short texts: warm feature cache vs cold`,
          measured: `${warm} s`,
          baseline: `${cold} s`,
          ratio: round(warm / cold, 2),
          target: '—',
          result: '—',
        },
        ...[1, 16].map((clients) => ({
          figure: `sync predict on the transfer-learned version, ${clients} client(s)`,
          measured: `${n(tlPredict[clients].rps)} req/s (p50 ${tlPredict[clients].p50} ms, p99 ${tlPredict[clients].p99} ms)`,
          baseline: '—',
          ratio: '—',
          target: '—',
          result: '—',
        })),
      ];
      return {
        area: 'foundation',
        title: this.title,
        description:
          `Encoder alone: libs/ml's USE-lite on wasm in a plain process, the same 16 short texts embedded back to back for ${fs.seconds} s, ${rounds} rounds, median. ` +
          `Embeddings: autocannon POST /v1/embeddings (16 texts, base64) on the real API and one real worker (wasm, one inference child), ${rounds} rounds of ${fs.seconds} s at 1 and 32 clients, medians. ` +
          `Transfer learning: two identical training jobs with base_model on ${fs.rows} short texts; started_at → finished_at of each. ` +
          `Transfer-learned predict: one short text per request, Prefer: wait=30.`,
        columns: RATIO_COLUMNS,
        rows,
        checks: [
          {
            name: 'embeddings/s at 32 clients ÷ the encoder alone',
            value: ratio32,
            target: `≥ ${TARGETS.embeddings_vs_encoder}`,
            pass: ratio32 >= TARGETS.embeddings_vs_encoder,
            text: `${ratio32} (${n(at32.rate)} vs ${n(encoderRate)})`,
          },
        ],
        figures: {
          targets: TARGETS,
          settings: fs,
          encoder_alone_per_round: alone,
          embeddings: { at1, at32 },
          transfer: { cold_s: cold, warm_s: warm },
          transfer_predict: tlPredict,
        },
        runs,
      };
    } finally {
      await worker?.stop();
      await api?.stop();
    }
  },
};
