// Child process of the "batch" bench scenario: the baseline for batch prediction. A version's
// artifact (as downloaded from the API) loaded with libs/ml's loadModel on wasm, predicting the
// dataset's rows in chunks of PREDICT_CHUNK back to back, once through after a warm-up chunk: a
// plain in-process predict loop, with no API, queue, worker, file or checkpoint.
// Input: PREDICT_INPUT, a JSON file {artifact (base64), rows}.
// One JSON line: {"event":"predict.result", "rows_per_s", "seconds"}
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../scripts/lib.mjs';

const ml = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'index.js')).href);
await ml.initBackend('wasm');
const input = JSON.parse(readFileSync(process.env.PREDICT_INPUT, 'utf8'));
const chunk = Number(process.env.PREDICT_CHUNK ?? 1024);
const model = await ml.loadModel(new Uint8Array(Buffer.from(input.artifact, 'base64')));
await model.predict(input.rows.slice(0, chunk));
let predicted = 0;
const t0 = performance.now();
for (let start = 0; start < input.rows.length; start += chunk) {
  const out = await model.predict(input.rows.slice(start, start + chunk));
  predicted += out.predictions.length;
}
const seconds = (performance.now() - t0) / 1000;
if (predicted !== input.rows.length) throw new Error(`${predicted} predictions for ${input.rows.length} rows`);
process.stdout.write(
  `${JSON.stringify({ event: 'predict.result', rows_per_s: Math.round(predicted / seconds), seconds: Math.round(seconds * 1000) / 1000 })}\n`,
);
process.exit(0);
