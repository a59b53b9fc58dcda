// Scenario "images": image classification through the real API and a real worker, each figure beside
// a baseline measured in the same run.
//  1. Upload: an NDJSON image dataset (BENCH_IMAGE_ROWS 28×28 PNGs, base64) through POST /v1/datasets
//     (decode + validate + store), images/s, against decoding the same files in this plain process
//     (libs/ml's decodeImage, the decoder the API uses).
//  2. CNN training: a training job on those images (the default CNN, BENCH_IMAGE_EPOCHS epochs),
//     samples/s from started_at → finished_at, against the same architecture (the version's own
//     topology) fitted with plain `model.fit` on the same decoded pixels in a plain process
//     (bench/cnn-fit-runner.mjs).
//  3. Sync predict on a MobileNetV2 head: one 64×64 JPEG a request, p50/p99 and images/s at 16 clients,
//     with dynamic batching on (the default) and off (worker restarted with PREDICT_BATCH_MAX_ROWS=1),
//     against the same version alone (its downloaded artifact, libs/ml loadModel + predict on batches of 16
//     in a plain process: bench/image-predict-runner.mjs). The encoder's compute is most of each image,
//     so batching gains little here; the model alone says how close the service is to the ceiling.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { benchTenant, envNumber, loadTest, median, RATIO_COLUMNS, root, round, startApi, startProcess, step } from './harness.mjs';

export const TARGETS = {
  /** CNN training samples/s through a job ÷ plain fit of the same model, at least */
  training_vs_fit: 0.7,
  /** sync predict images/s at 16 clients (batching on) ÷ the same model alone in a plain process, at least */
  predict_vs_model: 0.7,
};
const SHAPES = ['bar', 'column', 'ring'];

/** BENCH_IMAGE_ROWS (3,000), BENCH_IMAGE_EPOCHS (3), BENCH_IMAGE_SECONDS (5 s per load run). */
export function imageSettings(env = process.env) {
  return {
    rows: envNumber(env, 'BENCH_IMAGE_ROWS', 3_000, 30, true),
    epochs: envNumber(env, 'BENCH_IMAGE_EPOCHS', 3, 1, true),
    seconds: envNumber(env, 'BENCH_IMAGE_SECONDS', 5, 1),
  };
}

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 28×28 grey PNG of a moving shape on noise (as test/support/image-fixtures.ts draws them). */
function shapePng(shape, rand, size = 28) {
  const png = new pngjs.PNG({ width: size, height: size });
  const [cx, cy] = [size * (0.3 + 0.4 * rand()), size * (0.3 + 0.4 * rand())];
  const half = size * (0.18 + 0.12 * rand());
  const thick = size * (0.06 + 0.04 * rand());
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [dx, dy] = [x - cx, y - cy];
      const on =
        shape === 'bar'
          ? Math.abs(dy) < thick && Math.abs(dx) < half
          : shape === 'column'
            ? Math.abs(dx) < thick && Math.abs(dy) < half
            : Math.abs(Math.hypot(dx, dy) - half * 0.8) < thick;
      const v = Math.max(0, Math.min(255, (on ? 220 : 20) + (rand() - 0.5) * 40));
      png.data.set([v, v, v, 255], (y * size + x) * 4);
    }
  }
  return pngjs.PNG.sync.write(png);
}

/** A 64×64 JPEG of warm or cool blobs. */
function sceneJpeg(tone, rand, size = 64) {
  const blobs = Array.from({ length: 3 }, () => ({ x: rand() * size, y: rand() * size, r: size * (0.15 + 0.2 * rand()), s: rand() }));
  const data = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const hit = blobs.find((b) => Math.hypot(x - b.x, y - b.y) < b.r);
      const px = !hit
        ? [100, 100, 100]
        : tone === 'warm'
          ? [200 + 55 * hit.s, 60 + 100 * hit.s, 30]
          : [30, 90 + 100 * hit.s, 200 + 55 * hit.s];
      data.set([...px, 255], (y * size + x) * 4);
    }
  }
  return Buffer.from(jpeg.encode({ data, width: size, height: size }, 90).data);
}

export default {
  id: 'images',
  title: 'Images: upload vs plain decoding, CNN training through a job vs plain fit, MobileNetV2-head predictions with batching on and off',

  async run({ env, settings }) {
    const is = imageSettings();
    const rounds = settings.rounds;
    const ml = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'foundation', 'image-decode.js')).href);
    const rand = rng(5);
    const files = Array.from({ length: is.rows }, (_, i) => ({ bytes: shapePng(SHAPES[i % 3], rand), label: SHAPES[i % 3] }));
    const ndjson = files.map((f) => JSON.stringify({ image: f.bytes.toString('base64'), label: f.label })).join('\n');
    const limits = { type: 'image', width: 224, height: 224, max_bytes: 8 << 20, max_pixels: 4096 * 4096, max_inputs: 32 };

    // ── baseline 1: decoding the same files in a plain process ───────────────────────────────────
    const decodeRates = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      files.forEach((f, i) => {
        ml.decodeImage(f.bytes, i, limits);
      });
      decodeRates.push(Math.round(is.rows / ((performance.now() - t0) / 1000)));
    }
    const decodeRate = median(decodeRates);
    step(`images: plain decoding ${decodeRate} images/s`);

    let api;
    let worker;
    const dir = mkdtempSync(join(tmpdir(), 'aiaas-bench-images-'));
    const startWorker = (extra = {}) =>
      startProcess('dist/apps/worker/src/main.js', 'worker.ready', {
        env: { ...env, TF_BACKEND: 'wasm', LOG_LEVEL: 'warn', ...extra },
        timeoutMs: 60_000,
      });
    try {
      api = await startApi(env);
      worker = await startWorker();
      const { secret, t, must } = await benchTenant(api, env, 'bench-images', {
        max_dataset_rows: 10_000_000,
        max_storage_bytes: 10 * 2 ** 30,
      });

      // ── 1. upload ───────────────────────────────────────────────────────────────────────────────
      const uploadRates = [];
      let datasetId;
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        const res = await fetch(`${api.url}/v1/datasets?name=bench-shapes-${r}&task=image-classification`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/x-ndjson' },
          body: ndjson,
        });
        const body = await res.json();
        if (res.status !== 201) throw new Error(`image upload: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
        uploadRates.push(Math.round(is.rows / ((performance.now() - t0) / 1000)));
        datasetId = body.id;
      }
      const uploadRate = median(uploadRates);
      step(`images: upload ${uploadRate} images/s (rounds ${uploadRates.join(', ')})`);

      // ── 2. CNN training through a job vs plain fit ─────────────────────────────────────────────
      must(await t('POST', '/v1/models', { name: 'shapes', task: 'image-classification' }), 201, 'model');
      const trainJob = async (model, body) => {
        const answer = await t('POST', '/v1/jobs', { type: 'training', model, ...body }, { Prefer: 'wait=60' });
        let row = must(answer, answer.status === 202 ? 202 : 200, 'training');
        while (row.status === 'queued' || row.status === 'running') {
          await new Promise((r) => setTimeout(r, 200));
          row = must(await t('GET', `/v1/jobs/${row.id}`), 200, 'job');
        }
        if (row.status !== 'succeeded') throw new Error(`training ${row.status}: ${JSON.stringify(row.error)}`);
        return row;
      };
      // validation_split 0 on both sides: every row is a training sample
      const hp = { seed: 1, epochs: is.epochs, validation_split: 0, early_stopping: null };
      const job = await trainJob('shapes', { dataset: datasetId, hyperparameters: hp });
      const jobSeconds = (new Date(job.finished_at).getTime() - new Date(job.started_at).getTime()) / 1000;
      const jobRate = Math.round((is.rows * is.epochs) / jobSeconds);
      const version = must(await t('GET', '/v1/models/shapes/versions/1'), 200, 'version');
      const spec = {
        architecture: version.architecture,
        hyperparameters: version.hyperparameters,
        input: version.input_schema.image,
        labels: version.labels,
      };
      writeFileSync(
        join(dir, 'fit.json'),
        JSON.stringify({ ...spec, epochs: is.epochs, images: files.map((f) => ({ image: f.bytes.toString('base64'), label: f.label })) }),
      );
      const fit = await startProcess('bench/cnn-fit-runner.mjs', 'fit.result', {
        env: { ...env, NODE_OPTIONS: '', FIT_INPUT: join(dir, 'fit.json') },
        timeoutMs: 1_800_000,
      });
      await fit.stop();
      const fitRate = fit.ready.samples_per_s;
      const trainRatio = round(jobRate / fitRate, 2);
      step(`images: CNN training through a job ${jobRate} samples/s (${jobSeconds} s) vs plain fit ${fitRate} samples/s`);

      // ── 3. sync predict on a MobileNetV2 head, batching on and off ─────────────────────────────
      const scenes = Array.from({ length: 60 }, (_, i) => ({
        image: sceneJpeg(i % 2 ? 'warm' : 'cool', rand).toString('base64'),
        label: i % 2 ? 'warm' : 'cool',
      }));
      const sceneSet = must(
        await t('POST', '/v1/datasets', { name: 'scenes', task: 'image-classification', records: scenes }),
        201,
        'scenes',
      );
      must(await t('POST', '/v1/models', { name: 'scenes', task: 'image-classification' }), 201, 'model');
      await trainJob('scenes', { dataset: sceneSet.id, base_model: 'mobilenet-v2', hyperparameters: { seed: 1 } });
      const target = {
        url: `${api.url}/v1/models/scenes/predict`,
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', prefer: 'wait=30' },
        body: JSON.stringify({ inputs: [{ image: scenes[0].image }] }),
      };
      const artifact = await fetch(`${api.url}/v1/models/scenes/versions/1/artifact`, { headers: { authorization: `Bearer ${secret}` } });
      if (artifact.status !== 200) throw new Error(`artifact download: ${artifact.status}`);
      writeFileSync(
        join(dir, 'predict.json'),
        JSON.stringify({
          artifact: Buffer.from(await artifact.arrayBuffer()).toString('base64'),
          images: scenes.slice(0, 16).map((s) => s.image),
        }),
      );
      const aloneRates = [];
      for (let r = 0; r < rounds; r++) {
        const alone = await startProcess('bench/image-predict-runner.mjs', 'predict.result', {
          env: { ...env, NODE_OPTIONS: '', PREDICT_INPUT: join(dir, 'predict.json'), PREDICT_SECONDS: String(is.seconds) },
          timeoutMs: 300_000,
        });
        await alone.stop();
        aloneRates.push(alone.ready.images_per_s);
      }
      const aloneRate = median(aloneRates);
      step(`images: the MobileNetV2 head alone, batches of 16: ${aloneRate} images/s`);
      const predict = {};
      for (const mode of ['on', 'off']) {
        if (mode === 'off') {
          await worker.stop();
          worker = await startWorker({ PREDICT_BATCH_MAX_ROWS: '1' });
        }
        must(
          await t('POST', '/v1/models/scenes/predict', { inputs: [{ image: scenes[1].image }] }, { Prefer: 'wait=30' }),
          200,
          `predict warm-up (batching ${mode})`,
        );
        await loadTest({ ...target, duration: 2, connections: 16, label: `image predict warm-up, batching ${mode}` });
        const runs = [];
        for (let r = 0; r < rounds; r++) {
          const res = await loadTest({
            ...target,
            duration: is.seconds,
            connections: 16,
            label: `image predict, batching ${mode}`,
            serverPid: api.proc.pid,
          });
          if (res.non2xx || res.errors)
            throw new Error(
              `image predict (batching ${mode}): ${res.non2xx} non-2xx, ${res.errors} errors: ${JSON.stringify(res.status_codes)}`,
            );
          runs.push(res);
        }
        predict[mode] = {
          rps: median(runs.map((x) => x.rps)),
          p50: median(runs.map((x) => x.latency_ms.p50)),
          p99: median(runs.map((x) => x.latency_ms.p99)),
        };
        step(
          `images: MobileNetV2-head predict, batching ${mode}, 16 clients: ${predict[mode].rps} images/s, p50 ${predict[mode].p50} ms, p99 ${predict[mode].p99} ms`,
        );
      }

      const n = (x) => x.toLocaleString('en-US');
      const uploadRatio = round(uploadRate / decodeRate, 2);
      const batchingRatio = round(predict.on.rps / predict.off.rps, 2);
      const predictRatio = round(predict.on.rps / aloneRate, 2);
      const verdict = (value, min) => (value >= min ? 'PASS' : 'BELOW');
      const rows = [
        {
          figure: `image upload (NDJSON, ${n(is.rows)} 28×28 PNGs): decode + validate + store vs plain decoding`,
          measured: `${n(uploadRate)} images/s`,
          baseline: `${n(decodeRate)} images/s`,
          ratio: uploadRatio,
          target: '—',
          result: '—',
        },
        {
          figure: `CNN training through a job (${n(is.rows)} images × ${is.epochs} epochs) vs plain fit of the same model`,
          measured: `${n(jobRate)} samples/s`,
          baseline: `${n(fitRate)} samples/s`,
          ratio: trainRatio,
          target: `≥ ${TARGETS.training_vs_fit}`,
          result: verdict(trainRatio, TARGETS.training_vs_fit),
        },
        {
          figure: 'sync predict on a MobileNetV2 head, 16 clients (batching on) vs the model alone (batches of 16)',
          measured: `${n(predict.on.rps)} images/s (p50 ${predict.on.p50} ms, p99 ${predict.on.p99} ms)`,
          baseline: `${n(aloneRate)} images/s`,
          ratio: predictRatio,
          target: `≥ ${TARGETS.predict_vs_model}`,
          result: verdict(predictRatio, TARGETS.predict_vs_model),
        },
        {
          figure: 'sync predict on a MobileNetV2 head, 16 clients, batching on vs off',
          measured: `${n(predict.on.rps)} images/s (p50 ${predict.on.p50} ms, p99 ${predict.on.p99} ms)`,
          baseline: `${n(predict.off.rps)} images/s (p50 ${predict.off.p50} ms, p99 ${predict.off.p99} ms)`,
          ratio: batchingRatio,
          target: '—',
          result: '—',
        },
      ];
      return {
        area: 'images',
        title: this.title,
        description:
          `Upload: ${n(is.rows)} generated 28×28 grey PNGs as one NDJSON body (base64), POST /v1/datasets, ${rounds} rounds, median; baseline: libs/ml decodeImage on the same bytes in the bench process. ` +
          `Training: one job with the default CNN, ${is.epochs} epochs, validation_split 0, on the real worker (wasm); baseline: the version's own topology compiled with the same optimizer and fitted with model.fit on the same pixels in a plain process (wasm). ` +
          `Predict: a head on MobileNetV2 trained on 60 generated 64×64 JPEGs; one image a request, autocannon 16 clients, ${rounds} rounds of ${is.seconds} s, medians; batching off = the worker restarted with PREDICT_BATCH_MAX_ROWS=1; the model alone: the version's artifact, libs/ml predict on batches of 16, ${rounds} rounds of ${is.seconds} s, median.`,
        columns: RATIO_COLUMNS,
        rows,
        checks: [
          {
            name: 'CNN training job ÷ plain fit',
            value: trainRatio,
            target: `≥ ${TARGETS.training_vs_fit}`,
            pass: trainRatio >= TARGETS.training_vs_fit,
            text: `${trainRatio}`,
          },
          {
            name: 'image predict (16 clients) ÷ the model alone',
            value: predictRatio,
            target: `≥ ${TARGETS.predict_vs_model}`,
            pass: predictRatio >= TARGETS.predict_vs_model,
            text: `${predictRatio}`,
          },
        ],
        figures: {
          targets: TARGETS,
          settings: is,
          decode_per_round: decodeRates,
          upload_per_round: uploadRates,
          training: { job_seconds: jobSeconds, job_samples_per_s: jobRate, fit: fit.ready },
          predict,
          model_alone_per_round: aloneRates,
        },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await worker?.stop();
      await api?.stop();
    }
  },
};
