// Child process of the "foundation" bench scenario: the text encoder alone, as a plain process
// (libs/ml's loadFoundation on wasm, no API, no queue, no worker), embedding the same batches of
// 16 texts the API is sent, for ENCODER_SECONDS after a warm-up. One JSON line on stdout:
//   {"event":"encoder.result", "embeddings_per_s", "batches", "ms_per_batch"}
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../scripts/lib.mjs';

const seconds = Number(process.env.ENCODER_SECONDS ?? 5);
const texts = JSON.parse(process.env.ENCODER_TEXTS ?? '[]');
const ml = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'index.js')).href);
await ml.initBackend('wasm');
const handle = await ml.loadFoundation('universal-sentence-encoder-lite');
for (let i = 0; i < 3; i++) await handle.embed(texts);
let batches = 0;
const t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) {
  const out = await handle.embed(texts);
  if (out.vectors.length !== texts.length) throw new Error('fewer vectors than texts');
  batches++;
}
const elapsed = (performance.now() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({ event: 'encoder.result', embeddings_per_s: Math.round((batches * texts.length) / elapsed), batches, ms_per_batch: Math.round((elapsed * 1000) / batches) })}\n`,
);
process.exit(0);
