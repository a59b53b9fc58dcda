// Child process of the "images" bench scenario: the baseline for CNN training. The version's own
// topology (what the job trained), compiled with the same optimizer and learning rate, fitted with
// plain `model.fit` on the same images decoded in this process (wasm, as the worker). No API, queue,
// worker or libs/ml training loop. Input: FIT_INPUT, a JSON file {architecture, hyperparameters,
// input: {width, height, channels}, labels, epochs, images: [{image, label}]}. One JSON line:
//   {"event":"fit.result", "samples_per_s", "seconds", "epochs", "rows"}
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../scripts/lib.mjs';

const dist = (p) => import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', p)).href);
const ml = await dist('index.js');
const { decodeImage } = await dist('foundation/image-decode.js');
await ml.initBackend('wasm');
const tf = await import('@tensorflow/tfjs');
const spec = JSON.parse(readFileSync(process.env.FIT_INPUT, 'utf8'));
const { width, height, channels } = spec.input;
const limits = { type: 'image', width, height, max_bytes: 8 << 20, max_pixels: 4096 * 4096, max_inputs: 32 };
const n = spec.images.length;
const x = new Float32Array(n * width * height * channels);
const y = new Float32Array(n);
const index = new Map(spec.labels.map((l, i) => [l, i]));
spec.images.forEach((r, i) => {
  const rgb = decodeImage(Buffer.from(r.image, 'base64'), i, limits);
  if (rgb.width !== width || rgb.height !== height) throw new Error(`the baseline expects ${width}×${height} images`);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++)
      x[(i * width * height + p) * channels + c] = (channels === 1 ? rgb.data[p * 3] : rgb.data[p * 3 + c]) / 255;
  }
  y[i] = index.get(r.label);
});
const model = await tf.models.modelFromJSON({ modelTopology: spec.architecture });
const hp = spec.hyperparameters;
model.compile({ optimizer: tf.train.adam(hp.learning_rate ?? 0.001), loss: 'sparseCategoricalCrossentropy' });
// the model reads each image as its flat row-major height × width × channels vector (its first layer reshapes)
const xs = tf.tensor2d(x, [n, width * height * channels]);
const ys = tf.tensor1d(y);
// one warm-up batch, as the job's first batch also pays for kernel set-up
await model.fit(xs.slice([0], [Math.min(n, hp.batch_size ?? 32)]), ys.slice([0], [Math.min(n, hp.batch_size ?? 32)]), {
  epochs: 1,
  batchSize: hp.batch_size ?? 32,
  verbose: 0,
});
const t0 = performance.now();
await model.fit(xs, ys, { epochs: spec.epochs, batchSize: hp.batch_size ?? 32, shuffle: true, verbose: 0 });
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({ event: 'fit.result', samples_per_s: Math.round((n * spec.epochs) / seconds), seconds: Math.round(seconds * 10) / 10, epochs: spec.epochs, rows: n })}\n`,
);
process.exit(0);
