/**
 * Load time, memory and speed of the foundation models on one backend (default wasm), in this process alone.
 *
 *   node scripts/build.mjs && node dist/libs/ml/bench/foundation-speed.js
 */
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { pathToFileURL } from 'node:url';
import { initBackend } from '../src/backend.js';
import { baseFeatures } from '../src/foundation/features.js';
import { loadFoundation } from '../src/foundation/runtime.js';

const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const WORDS =
  'the committee reviewed budget proposals for schools roads hospitals and the national parks while members argued about taxes trade and jobs'.split(
    ' ',
  );

function prose(chars: number, seed: number): string {
  let s = '';
  for (let i = 0; s.length < chars; i++) s += `${WORDS[(i * 7 + seed * 13 + (i >> 3)) % WORDS.length]}${i % 12 === 11 ? '. ' : ' '}`;
  return s.slice(0, chars);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const out = await fn();
  return [out, performance.now() - started];
}

export async function measureFoundationSpeed(backendName = 'wasm'): Promise<Record<string, unknown>> {
  const backend = await initBackend(backendName);
  const rss0 = process.memoryUsage().rss;
  const tf0 = tf.memory().numBytes;
  const [use, useLoad] = await timed(() => loadFoundation('universal-sentence-encoder-lite'));
  const rss1 = process.memoryUsage().rss;
  const tf1 = tf.memory().numBytes;
  const short = Array.from({ length: 64 }, (_, i) => `Sentence ${i}: ${prose(50, i)}`);
  const docs = Array.from({ length: 16 }, (_, i) => prose(1000, i));
  const long = Array.from({ length: 8 }, (_, i) => prose(4000, i));
  await use.embed(short.slice(0, 16));
  const [, shortMs] = await timed(() => use.embed(short));
  const [docOut, docMs] = await timed(() => use.embed(docs));
  const [, longMs] = await timed(() => baseFeatures(use, long));
  const [mobilenet, imageLoad] = await timed(() => loadFoundation('nsfw-mobilenet-v2'));
  const rss2 = process.memoryUsage().rss;
  const tf2 = tf.memory().numBytes;
  const data = Buffer.alloc(640 * 480 * 4, 120);
  const photo = jpeg.encode({ data, width: 640, height: 480 }, 85).data;
  await mobilenet.embed([photo]);
  const [, imageMs] = await timed(() => mobilenet.embed(Array.from({ length: 8 }, () => photo)));
  return {
    backend: backend.name,
    text: {
      load_ms: Math.round(useLoad),
      rss_mb: mb(rss1 - rss0),
      tensor_mb: mb(tf1 - tf0),
      ms_per_short_sentence_batch_16: Math.round((shortMs / short.length) * 10) / 10,
      ms_per_1000_char_doc_batch_16: Math.round(docMs / docs.length),
      tokens_per_1000_char_doc: docOut.tokens[0],
      base_features_ms_per_4000_char_doc: Math.round(longMs / long.length),
    },
    image: {
      load_ms: Math.round(imageLoad),
      rss_mb: mb(rss2 - rss1),
      tensor_mb: mb(tf2 - tf1),
      ms_per_640x480_jpeg_batch_8: Math.round(imageMs / 8),
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await measureFoundationSpeed(process.argv[2] ?? 'wasm'), null, 2));
}
