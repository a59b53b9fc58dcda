/**
 * Transfer learning on 200 long documents against the from-scratch text model on the same 200, on real corpora found
 * on this machine (SpamAssassin emails, State of the Union addresses), several seeds, a fixed holdout per task.
 *
 *   node scripts/build.mjs && node dist/libs/ml/bench/foundation-transfer.js [task…]
 *
 * Tasks: spam (ham vs spam bodies), party (SOTU segments, Democrat vs Republican), era (SOTU segments: before 1861,
 * 1861–1932, after 1932). SOTU segments of a speech never straddle train and holdout (speeches are split first).
 * Env: CORPORA (default /tmp/corpora), SEEDS (default 3), HOLDOUT (default 500), TRAIN (default 200), POOL (documents the
 * seeds draw their TRAIN from, default 2 × TRAIN), and VARIANTS=1 to
 * add heads that see only the encoder (no n-grams) or only the n-grams; SCRATCH_DIST=<another build's dist/> adds that
 * build's from-scratch text model as `scratch_other`. Base features are cached in /tmp/fm-bench.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend } from '../src/backend.js';
import { baseFeatures, CHUNK_TOKENS, MAX_CHUNKS } from '../src/foundation/features.js';
import { loadFoundation, type FoundationHandle } from '../src/foundation/runtime.js';
import { HEAD_FEATURES } from '../src/foundation/transfer.js';
import { LoadedModel, evaluate } from '../src/predict.js';
import { seededRandom, shuffleInPlace } from '../src/random.js';
import { train } from '../src/train.js';
import type { ClassificationMetrics, Row } from '../src/types.js';

const CORPORA = process.env.CORPORA ?? '/tmp/corpora';
const CACHE = '/tmp/fm-bench';
const BASE = 'universal-sentence-encoder-lite';

interface Doc {
  text: string;
  label: string;
}
interface Task {
  name: string;
  pool: Doc[];
  holdout: Doc[];
}

function spamTask(holdoutSize: number, trainPool: number): Task {
  const dir = join(CORPORA, 'spam-assassin/data');
  const read = (group: string, label: string): Doc[] =>
    readdirSync(join(dir, group))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => {
        const raw = (JSON.parse(readFileSync(join(dir, group, f), 'utf8')) as { text: string }).text;
        // the body only: headers (relays, mailers) give spam away too easily to say anything about text models
        const body = raw.slice(raw.indexOf('\n\n') + 2);
        return { text: body, label };
      })
      .filter((d) => d.text.trim().length >= 1000);
  const ham = [...read('easy-ham-1', 'ham'), ...read('hard-ham-1', 'ham')];
  const spam = [...read('spam-1', 'spam'), ...read('spam-2', 'spam')];
  return splitBalanced('spam', [ham, spam], holdoutSize, trainPool);
}

/** Two disjoint random samples per class: a training pool and a holdout, equal counts per class. */
function splitBalanced(name: string, classes: Doc[][], holdoutSize: number, trainPool: number): Task {
  const random = seededRandom(7);
  const pool: Doc[] = [];
  const holdout: Doc[] = [];
  for (const docs of classes) {
    const order = docs.map((_, i) => i);
    shuffleInPlace(order, random);
    const h = Math.round(holdoutSize / classes.length);
    const p = Math.round(trainPool / classes.length);
    holdout.push(...order.slice(0, h).map((i) => docs[i]));
    pool.push(...order.slice(h, h + p).map((i) => docs[i]));
  }
  return { name, pool, holdout };
}

/** SOTU speeches cut into ~4,000-character segments at sentence ends; speeches alternate between train and holdout. */
function sotuTask(name: 'party' | 'era', holdoutSize: number, trainPool: number): Task {
  const dir = join(CORPORA, 'sotu/data');
  const speeches = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { year: number; party: string; text: string });
  const label = (s: { year: number; party: string }): string | null => {
    if (name === 'party') return s.party === 'Democratic' ? 'democratic' : s.party === 'Republican' ? 'republican' : null;
    return s.year < 1861 ? 'before-1861' : s.year <= 1932 ? '1861-1932' : 'after-1932';
  };
  const trainDocs: Doc[] = [];
  const holdDocs: Doc[] = [];
  speeches.forEach((s, k) => {
    const l = label(s);
    if (!l) return;
    for (const text of segments(s.text, 4000)) (k % 2 === 0 ? trainDocs : holdDocs).push({ text, label: l });
  });
  const random = seededRandom(11);
  const pick = (docs: Doc[], n: number) => {
    const order = docs.map((_, i) => i);
    shuffleInPlace(order, random);
    return order.slice(0, n).map((i) => docs[i]);
  };
  return { name, pool: pick(trainDocs, trainPool), holdout: pick(holdDocs, holdoutSize) };
}

function segments(text: string, size: number): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    const stop = text.indexOf('. ', end);
    if (stop !== -1 && stop - end < 400) end = stop + 1;
    else if (stop === -1) end = text.length;
    const piece = text.slice(start, end).trim();
    if (piece.length >= 1500) out.push(piece);
    start = end;
  }
  return out;
}

async function cachedFeatures(handle: FoundationHandle, docs: Doc[]): Promise<Float32Array[]> {
  mkdirSync(CACHE, { recursive: true });
  const key = createHash('sha256')
    .update(`${handle.sha256}|${CHUNK_TOKENS}|${MAX_CHUNKS}|`)
    .update(docs.map((d) => d.text).join('\u0000'))
    .digest('hex')
    .slice(0, 16);
  const file = join(CACHE, `${key}.f32`);
  if (existsSync(file)) {
    const bytes = readFileSync(file);
    const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const width = all.length / docs.length;
    return docs.map((_, i) => all.slice(i * width, (i + 1) * width));
  }
  const started = performance.now();
  const features = await baseFeatures(
    handle,
    docs.map((d) => d.text),
  );
  const seconds = (performance.now() - started) / 1000;
  console.error(`  base features of ${docs.length} docs: ${seconds.toFixed(1)} s (${((seconds * 1000) / docs.length).toFixed(0)} ms/doc)`);
  const all = new Float32Array(features.length * features[0].length);
  features.forEach((f, i) => {
    all.set(f, i * f.length);
  });
  writeFileSync(file, Buffer.from(all.buffer));
  return features;
}

const rowsOf = (docs: Doc[]): Row[] => docs.map((d) => ({ text: d.text, label: d.label }));
const spec = { task: 'text-classification' as const, label: 'label', textField: 'text' };

async function transferAccuracy(
  handle: FoundationHandle,
  trainDocs: Doc[],
  trainF: Float32Array[],
  holdout: Doc[],
  holdF: Float32Array[],
  seed: number,
): Promise<number> {
  const hp = process.env.HP ? (JSON.parse(process.env.HP) as object) : {};
  const result = await train({
    spec,
    rows: rowsOf(trainDocs),
    hyperparameters: { ...hp, seed },
    baseModel: { id: BASE, sha256: handle.sha256, features: trainF },
  });
  const model = await LoadedModel.load(result.artifact);
  try {
    return ((await model.evaluate(rowsOf(holdout), holdF)) as ClassificationMetrics).accuracy;
  } finally {
    model.dispose();
  }
}

export async function runTransferBench(taskNames: string[]): Promise<Record<string, unknown>> {
  const seeds = Number(process.env.SEEDS ?? 3);
  const holdoutSize = Number(process.env.HOLDOUT ?? 500);
  const trainSize = Number(process.env.TRAIN ?? 200);
  const poolSize = Number(process.env.POOL ?? trainSize * 2);
  const variants = process.env.VARIANTS === '1';
  const backend = await initBackend(process.env.TF_BACKEND ?? 'wasm');
  if (process.env.HEAD) Object.assign(HEAD_FEATURES, JSON.parse(process.env.HEAD));
  const handle = await loadFoundation(BASE);
  const report: Record<string, unknown> = {
    backend: backend.name,
    base: BASE,
    train_docs: trainSize,
    seeds,
    head: { ...HEAD_FEATURES },
    hp: process.env.HP ?? null,
  };
  for (const name of taskNames) {
    const task = name === 'spam' ? spamTask(holdoutSize, poolSize) : sotuTask(name as 'party' | 'era', holdoutSize, poolSize);
    const chars = task.holdout.map((d) => d.text.length).sort((a, b) => a - b);
    console.error(`${name}: pool ${task.pool.length}, holdout ${task.holdout.length}, median ${chars[chars.length >> 1]} chars`);
    const poolF = await cachedFeatures(handle, task.pool);
    const holdF = await cachedFeatures(handle, task.holdout);
    const figures: Record<string, number[]> = { scratch: [], transfer: [] };
    const other = process.env.SCRATCH_DIST
      ? {
          train: (await import(join(process.env.SCRATCH_DIST, 'libs/ml/src/train.js'))).train as typeof train,
          evaluate: (await import(join(process.env.SCRATCH_DIST, 'libs/ml/src/predict.js'))).evaluate as typeof evaluate,
        }
      : null;
    if (other) figures.scratch_other = [];
    if (variants) Object.assign(figures, { transfer_encoder_only: [], transfer_ngrams_only: [] });
    for (let seed = 1; seed <= seeds; seed++) {
      const order = task.pool.map((_, i) => i);
      shuffleInPlace(order, seededRandom(1000 + seed));
      const idx = order.slice(0, trainSize);
      const trainDocs = idx.map((i) => task.pool[i]);
      const trainF = idx.map((i) => poolF[i]);
      const scratch = await train({ spec, rows: rowsOf(trainDocs), hyperparameters: { seed } });
      figures.scratch.push(((await evaluate(scratch.artifact, rowsOf(task.holdout))) as ClassificationMetrics).accuracy);
      if (other) {
        const model = await other.train({ spec, rows: rowsOf(trainDocs), hyperparameters: { seed } });
        figures.scratch_other.push(((await other.evaluate(model.artifact, rowsOf(task.holdout))) as ClassificationMetrics).accuracy);
      }
      figures.transfer.push(await transferAccuracy(handle, trainDocs, trainF, task.holdout, holdF, seed));
      if (variants) {
        const saved = { ...HEAD_FEATURES };
        Object.assign(HEAD_FEATURES, { buckets: 0, baseWeight: 1 });
        figures.transfer_encoder_only.push(await transferAccuracy(handle, trainDocs, trainF, task.holdout, holdF, seed));
        Object.assign(HEAD_FEATURES, saved, { baseWeight: 0 });
        figures.transfer_ngrams_only.push(await transferAccuracy(handle, trainDocs, trainF, task.holdout, holdF, seed));
        Object.assign(HEAD_FEATURES, saved);
      }
      console.error(
        `  seed ${seed}: ${Object.entries(figures)
          .map(([k, v]) => `${k} ${v[v.length - 1].toFixed(3)}`)
          .join(', ')}`,
      );
    }
    const mean = (v: number[]) => Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 1000) / 1000;
    report[name] = {
      holdout: task.holdout.length,
      median_chars: chars[chars.length >> 1],
      ...Object.fromEntries(
        Object.entries(figures).map(([k, v]) => [k, { mean: mean(v), runs: v.map((x) => Math.round(x * 1000) / 1000) }]),
      ),
    };
  }
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const tasks = process.argv.slice(2);
  console.log(JSON.stringify(await runTransferBench(tasks.length > 0 ? tasks : ['spam', 'party', 'era']), null, 2));
}
