// Scenario "batch": batch prediction into output files through the real API and a real worker,
// each figure beside a baseline measured in the same run.
//  1. Tabular: a batch job (output ndjson) over BENCH_BATCH_ROWS (100,000) rows, rows/s from the
//     job's started_at to finished_at (reading the dataset, scoring in the inference child, writing
//     and committing every chunk with its checkpoint), against the same version's artifact alone in
//     a plain process predicting the same rows in chunks (bench/batch-predict-runner.mjs).
//  2. Text: the same over BENCH_BATCH_TEXTS (2,000) short texts through a transfer-learned version
//     (a head on universal-sentence-encoder-lite: the encoder runs on every text on both sides).
//  3. Streaming a 200 MB output file: GET /v1/files/{id}/content, a tenth of it (one Range) then
//     all of it, the API's resident memory sampled from /proc every 20 ms: the peaks compared.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { benchTenant, envNumber, RATIO_COLUMNS, round, startApi, startProcess, step } from './harness.mjs';

export const TARGETS = {
  /** batch job rows/s ÷ a plain in-process predict loop over the same rows and model, at least */
  batch_vs_predict_loop: 0.7,
  /** the API's peak resident memory streaming the whole file, above its peak streaming a tenth of it, at most (MB) */
  streaming_rss_growth_mb: 32,
};
const USE = 'universal-sentence-encoder-lite';
const WORDS = ['market', 'river', 'engine', 'garden', 'music', 'election', 'winter', 'doctor', 'coffee', 'planet', 'league', 'recipe'];
const sentence = (i) =>
  `The ${WORDS[i % 12]} near the ${WORDS[(i * 7 + 3) % 12]} changed after the ${WORDS[(i * 5 + 1) % 12]} report ${i}.`;

/** BENCH_BATCH_ROWS (100,000 tabular rows), BENCH_BATCH_TEXTS (2,000), BENCH_STREAM_MB (200). */
export function batchSettings(env = process.env) {
  return {
    rows: envNumber(env, 'BENCH_BATCH_ROWS', 100_000, 1_000, true),
    texts: envNumber(env, 'BENCH_BATCH_TEXTS', 2_000, 100, true),
    streamMb: envNumber(env, 'BENCH_STREAM_MB', 200, 1, true),
  };
}

/** Deterministic blobs: 4 features on different scales, 3 classes. */
function blobs(n) {
  const centers = [
    [1, -2, 3, 0.5],
    [-3, 1, -1, 2],
    [2, 3, -2, -1],
  ];
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return Array.from({ length: n }, (_, i) => {
    const c = centers[i % 3];
    return { x1: c[0] + rnd(), x2: (c[1] + rnd()) * 10, x3: (c[2] + rnd()) / 10, x4: c[3] + rnd(), label: `c${i % 3}` };
  });
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : 0;
}

export default {
  id: 'batch',
  title: 'Batch prediction into files: rows/s of a batch job vs a plain predict loop, and the API streaming a large file',

  async run({ env }) {
    const bs = batchSettings();
    const dir = mkdtempSync(join(tmpdir(), 'aiaas-bench-batch-'));
    let api;
    let worker;
    try {
      api = await startApi(env);
      worker = await startProcess('dist/apps/worker/src/main.js', 'worker.ready', {
        env: { ...env, TF_BACKEND: 'wasm', LOG_LEVEL: 'warn' },
        timeoutMs: 60_000,
      });
      const { id: tenantId, secret, t, must } = await benchTenant(api, env, 'bench-batch');
      const finish = async (body, what) => {
        let row = must(await t('POST', '/v1/jobs', body), 202, what);
        while (row.status === 'queued' || row.status === 'running') {
          await new Promise((r) => setTimeout(r, 100));
          row = must(await t('GET', `/v1/jobs/${row.id}`), 200, 'job');
        }
        if (row.status !== 'succeeded') throw new Error(`${what} ${row.status}: ${JSON.stringify(row.error)}`);
        return row;
      };
      const upload = async (name, task, rows) => {
        const columns = Object.keys(rows[0]);
        const csv = [columns.join(','), ...rows.map((r) => columns.map((c) => r[c]).join(','))].join('\n');
        const res = await fetch(`${api.url}/v1/datasets?name=${name}&task=${task}&label=label`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'text/csv' },
          body: csv,
        });
        const out = await res.json();
        if (res.status !== 201) throw new Error(`upload ${name}: ${res.status} ${JSON.stringify(out).slice(0, 300)}`);
        return out.id;
      };
      /** The batch job's rows/s (started_at → finished_at) and the artifact's alone, over the same rows. */
      const compare = async (model, datasetId, rows, chunk, label) => {
        const job = await finish({ type: 'inference', model, dataset: datasetId, output: { format: 'ndjson' } }, `${label} batch`);
        if (job.result.rows !== rows.length) throw new Error(`${label}: the file has ${job.result.rows} rows of ${rows.length}`);
        const seconds = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
        const artifact = await fetch(`${api.url}/v1/models/${model}/versions/1/artifact`, {
          headers: { authorization: `Bearer ${secret}` },
        });
        if (artifact.status !== 200) throw new Error(`artifact download: ${artifact.status}`);
        const input = join(dir, `${model}.json`);
        const features = rows.map(({ label: _l, ...r }) => r);
        writeFileSync(input, JSON.stringify({ artifact: Buffer.from(await artifact.arrayBuffer()).toString('base64'), rows: features }));
        const alone = await startProcess('bench/batch-predict-runner.mjs', 'predict.result', {
          env: { ...env, NODE_OPTIONS: '', PREDICT_INPUT: input, PREDICT_CHUNK: String(chunk) },
          timeoutMs: 600_000,
        });
        await alone.stop();
        const jobRate = Math.round(rows.length / seconds);
        step(
          `batch: ${label}: job ${jobRate} rows/s (${seconds} s, ${job.result.bytes} bytes), predict loop ${alone.ready.rows_per_s} rows/s`,
        );
        return {
          jobRate,
          seconds,
          bytes: job.result.bytes,
          loopRate: alone.ready.rows_per_s,
          ratio: round(jobRate / alone.ready.rows_per_s, 2),
        };
      };

      // ── 1. tabular ──────────────────────────────────────────────────────────────────────────────
      step(`batch: uploading ${bs.rows.toLocaleString('en-US')} tabular rows, training on 2,000`);
      const rows = blobs(bs.rows);
      const trainSet = await upload('blobs-train', 'classification', rows.slice(0, 2_000));
      const scoreSet = await upload('blobs-score', 'classification', rows);
      must(await t('POST', '/v1/models', { name: 'blobs', task: 'classification' }), 201, 'model');
      await finish({ type: 'training', model: 'blobs', dataset: trainSet, hyperparameters: { seed: 1 } }, 'tabular training');
      const tabular = await compare('blobs', scoreSet, rows, 4_096, `${bs.rows} tabular rows`);

      // ── 2. texts through a transfer-learned version ────────────────────────────────────────────
      step(`batch: ${bs.texts} texts, a head on ${USE}`);
      const texts = Array.from({ length: bs.texts }, (_, i) => ({ text: sentence(i * 13 + 5), label: ['a', 'b', 'c'][(i * 7) % 3] }));
      const textSet = must(
        await t('POST', '/v1/datasets', { name: 'texts', task: 'text-classification', records: texts }),
        201,
        'texts',
      ).id;
      must(await t('POST', '/v1/models', { name: 'texts', task: 'text-classification' }), 201, 'text model');
      await finish(
        { type: 'training', model: 'texts', dataset: textSet, base_model: USE, hyperparameters: { seed: 1 } },
        'transfer training',
      );
      const text = await compare('texts', textSet, texts, 256, `${bs.texts} texts (transfer-learned)`);

      // ── 3. streaming a large file ─────────────────────────────────────────────────────────────
      // The file is written straight into the file tables (1 MB chunks, as a batch job of that size
      // would leave them): what is measured is the API streaming it.
      const fileId = `file_bench${Date.now().toString(36)}`;
      const db = new pg.Client({ connectionString: env.DATABASE_URL });
      await db.connect();
      const line = `${JSON.stringify({ row: 0, prediction: { label: 'c0', probabilities: { c0: 0.9, c1: 0.05, c2: 0.05 }, version: 1 } })}\n`;
      const chunkBytes = 1024 * 1024;
      const piece = Buffer.from(line.repeat(Math.ceil(chunkBytes / line.length))).subarray(0, chunkBytes);
      try {
        await db.query(
          `INSERT INTO files (id, tenant_id, format, content_type, status, bytes, rows, sha256, expires_at)
           VALUES ($1, $2, 'ndjson', 'application/x-ndjson; charset=utf-8', 'ready', $3, 0, 'bench', now() + interval '1 day')`,
          [fileId, tenantId, bs.streamMb * chunkBytes],
        );
        for (let seq = 0; seq < bs.streamMb; seq++) {
          await db.query(
            'INSERT INTO file_chunks (file_id, seq, first_row, rows, byte_offset, bytes, data) VALUES ($1, $2, 0, 0, $3, $4, $5)',
            [fileId, seq, seq * chunkBytes, chunkBytes, piece],
          );
        }
      } finally {
        await db.end();
      }
      // Streamed twice: a tenth of the file (one Range), then all of it. Flat means the API's peak
      // memory does not follow the bytes: the whole file's peak no higher than the tenth's plus a margin.
      const pid = api.proc.pid;
      const stream = async (bytes) => {
        let peak = rssMb(pid);
        const sampler = setInterval(() => {
          peak = Math.max(peak, rssMb(pid));
        }, 20);
        const t0 = performance.now();
        const headers = {
          authorization: `Bearer ${secret}`,
          ...(bytes < bs.streamMb * chunkBytes ? { range: `bytes=0-${bytes - 1}` } : {}),
        };
        const res = await fetch(`${api.url}/v1/files/${fileId}/content`, { headers });
        let received = 0;
        for await (const part of res.body) received += part.length;
        const seconds = (performance.now() - t0) / 1000;
        clearInterval(sampler);
        peak = Math.max(peak, rssMb(pid));
        if (res.status >= 300 || received !== bytes) throw new Error(`streaming: ${res.status}, ${received} of ${bytes} bytes`);
        return { peak, seconds };
      };
      const before = rssMb(pid);
      const tenthMb = Math.max(1, Math.round(bs.streamMb / 10));
      const tenth = await stream(tenthMb * chunkBytes);
      const whole = await stream(bs.streamMb * chunkBytes);
      const peak = whole.peak;
      const growth = round(whole.peak - tenth.peak, 1);
      const streamSeconds = whole.seconds;
      const mbps = round(bs.streamMb / streamSeconds, 1);
      step(
        `batch: streamed ${bs.streamMb} MB in ${round(streamSeconds, 2)} s (${mbps} MB/s); API RSS ${before} MB before, peak ${tenth.peak} MB streaming ${tenthMb} MB, ${peak} MB streaming ${bs.streamMb} MB`,
      );

      const n = (x) => x.toLocaleString('en-US');
      const ratioRow = (figure, r) => ({
        figure,
        measured: `${n(r.jobRate)} rows/s (${r.seconds} s, ${n(r.bytes)} bytes written)`,
        baseline: `${n(r.loopRate)} rows/s`,
        ratio: r.ratio,
        target: `≥ ${TARGETS.batch_vs_predict_loop}`,
        result: r.ratio >= TARGETS.batch_vs_predict_loop ? 'PASS' : 'BELOW',
      });
      const rowsOut = [
        ratioRow(`batch job over ${n(bs.rows)} tabular rows vs a plain predict loop`, tabular),
        ratioRow(`batch job over ${n(bs.texts)} texts (a head on ${USE}) vs a plain predict loop`, text),
        {
          figure: `the API streaming a ${bs.streamMb} MB output file: peak resident memory`,
          measured: `${peak} MB (${mbps} MB/s)`,
          baseline: `${tenth.peak} MB streaming ${tenthMb} MB (${before} MB before)`,
          ratio: round(peak / tenth.peak, 2),
          target: `≤ +${TARGETS.streaming_rss_growth_mb} MB`,
          result: growth <= TARGETS.streaming_rss_growth_mb ? 'PASS' : 'BELOW',
        },
      ];
      const checks = [
        ...[
          ['tabular', tabular],
          ['text', text],
        ].map(([name, r]) => ({
          name: `batch job rows/s ÷ plain predict loop (${name})`,
          value: r.ratio,
          target: `≥ ${TARGETS.batch_vs_predict_loop}`,
          pass: r.ratio >= TARGETS.batch_vs_predict_loop,
          text: `${r.ratio} (${n(r.jobRate)} vs ${n(r.loopRate)} rows/s)`,
        })),
        {
          name: `API peak memory streaming ${bs.streamMb} MB above streaming a tenth of it`,
          value: growth,
          target: `≤ ${TARGETS.streaming_rss_growth_mb} MB`,
          pass: growth <= TARGETS.streaming_rss_growth_mb,
          text: `${growth >= 0 ? '+' : '−'}${Math.abs(growth)} MB (${tenth.peak} MB at ${tenthMb} MB → ${peak} MB at ${bs.streamMb} MB; ${before} MB before)`,
        },
      ];
      return {
        area: 'batch',
        title: this.title,
        description:
          `Batch job: POST /v1/jobs {type: "inference", dataset, output: {format: "ndjson"}} on the real API and one real worker (wasm, its inference child), rows ÷ (finished_at − started_at): reading the dataset, scoring, writing and committing each chunk with its checkpoint. ` +
          `Predict loop: the same version's downloaded artifact, libs/ml loadModel + predict on wasm in a plain process, the same rows in chunks (4,096 tabular rows, 256 texts), once through after a warm-up chunk. ` +
          `Tabular: a classifier trained by a job on 2,000 of the rows (4 features, 3 classes). Text: a head trained on universal-sentence-encoder-lite's features of the texts (the encoder runs on every text on both sides). ` +
          `Streaming: a ${bs.streamMb} MB file in 1 MB chunks, read over HTTP first a tenth (one Range), then whole, the API's VmRSS sampled every 20 ms: flat when the whole file's peak is within ${TARGETS.streaming_rss_growth_mb} MB of the tenth's.`,
        columns: RATIO_COLUMNS,
        rows: rowsOut,
        checks,
        figures: {
          targets: TARGETS,
          settings: bs,
          tabular,
          text,
          streaming: {
            mb: bs.streamMb,
            seconds: round(streamSeconds, 3),
            rss_before_mb: before,
            rss_peak_tenth_mb: tenth.peak,
            rss_peak_mb: peak,
          },
        },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await worker?.stop();
      await api?.stop();
    }
  },
};
