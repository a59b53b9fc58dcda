// Child process of the "images" bench scenario: the baseline for sync image predictions. A version's
// artifact (a head on MobileNetV2, as downloaded from the API) loaded with libs/ml's loadModel on wasm,
// predicting batches of PREDICT_BATCH images back to back for PREDICT_SECONDS after a warm-up: the
// model alone, with no API, queue or worker. Input: PREDICT_INPUT, a JSON file {artifact (base64), images}.
// One JSON line: {"event":"predict.result", "images_per_s", "batches", "ms_per_batch"}
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../scripts/lib.mjs';

const ml = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'index.js')).href);
await ml.initBackend('wasm');
const input = JSON.parse(readFileSync(process.env.PREDICT_INPUT, 'utf8'));
const batch = Number(process.env.PREDICT_BATCH ?? 16);
const seconds = Number(process.env.PREDICT_SECONDS ?? 5);
const model = await ml.loadModel(new Uint8Array(Buffer.from(input.artifact, 'base64')));
const rows = Array.from({ length: batch }, (_, i) => ({ image: input.images[i % input.images.length] }));
for (let i = 0; i < 2; i++) await model.predict(rows);
let batches = 0;
const t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) {
  const out = await model.predict(rows);
  if (out.predictions.length !== rows.length) throw new Error('fewer predictions than images');
  batches++;
}
const elapsed = (performance.now() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({ event: 'predict.result', images_per_s: Math.round((batches * batch * 10) / elapsed) / 10, batches, ms_per_batch: Math.round((elapsed * 1000) / batches) })}\n`,
);
process.exit(0);
