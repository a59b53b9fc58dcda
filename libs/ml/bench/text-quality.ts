/**
 * Holdout accuracy of text models on long real documents: the default (hashed n-grams) against
 * the former default (token embedding, average pooling, truncated to sequence_length), on the
 * same 70/30 splits, through `train()` and the artifact (`LoadedModel.evaluate`) as serving runs them.
 *
 *   node scripts/build.mjs && node dist/libs/ml/bench/text-quality.js [corpora-dir] [models] [seeds]
 *
 * corpora-dir (default /tmp/corpora) holds spam-assassin/data/<folder>/<one email per file> and
 * sotu/data/*.json ({year, name, party, text}). models: comma-separated names of MODELS; seeds: comma-separated;
 * a fourth argument keeps only the tasks whose name contains it. Not part of npm test.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend } from '../src/backend.js';
import { LoadedModel } from '../src/predict.js';
import { seededRandom, shuffleInPlace } from '../src/random.js';
import { train } from '../src/train.js';
import type { ClassificationMetrics, Hyperparameters, Row } from '../src/types.js';

interface Task {
  name: string;
  rows: Row[];
}

interface ModelConfig {
  hyperparameters: Hyperparameters;
  /** The former default, as a custom architecture over token ids. */
  sequence?: boolean;
}

export const MODELS: Record<string, ModelConfig> = {
  default: { hyperparameters: {} },
  'former-default': { hyperparameters: { epochs: 10, batch_size: 32, learning_rate: 0.01 }, sequence: true },
  unigrams: { hyperparameters: { ngrams: 1 } },
  trigrams: { hyperparameters: { ngrams: 3 } },
  'buckets-2^14': { hyperparameters: { max_vocabulary: 1 << 14 } },
  'buckets-2^15': { hyperparameters: { max_vocabulary: 1 << 15 } },
  'buckets-2^16': { hyperparameters: { max_vocabulary: 1 << 16 } },
  'epochs-5': { hyperparameters: { epochs: 5 } },
  'epochs-20': { hyperparameters: { epochs: 20 } },
  'lr-0.1': { hyperparameters: { learning_rate: 0.1 } },
  'lr-0.05-epochs-20': { hyperparameters: { learning_rate: 0.05, epochs: 20 } },
  'lr-0.1-epochs-30': { hyperparameters: { learning_rate: 0.1, epochs: 30 } },
  'epochs-60': { hyperparameters: { epochs: 60 } },
  'lr-0.03': { hyperparameters: { learning_rate: 0.03 } },
  'lr-0.03-epochs-40': { hyperparameters: { learning_rate: 0.03, epochs: 40 } },
  'projection-64': { hyperparameters: { embedding_dim: 64 } },
};

function formerDefault(classes: number): Record<string, unknown> {
  return {
    class_name: 'Sequential',
    config: {
      name: 'text_classifier',
      layers: [
        { class_name: 'Embedding', config: { name: 'embedding', input_dim: 20_000, output_dim: 64, batch_input_shape: [null, null] } },
        { class_name: 'GlobalAveragePooling1D', config: { name: 'pooling' } },
        { class_name: 'Dense', config: { name: 'output', units: classes, activation: 'softmax' } },
      ],
    },
  };
}

const stripHeaders = (email: string) => {
  const at = email.search(/\r?\n\r?\n/);
  return at < 0 ? email : email.slice(at).trim();
};

function spamAssassin(dir: string, headers: boolean): Task {
  const rows: Row[] = [];
  for (const folder of readdirSync(dir).sort()) {
    const path = join(dir, folder);
    if (!existsSync(path) || folder.includes('.')) continue;
    const label = folder.startsWith('spam') ? 'spam' : 'ham';
    for (const file of readdirSync(path).sort()) {
      const raw = readFileSync(join(path, file), 'latin1');
      rows.push({ text: headers ? raw : stripHeaders(raw), label });
    }
  }
  return { name: `spam-assassin ${headers ? 'raw' : 'bodies'}`, rows };
}

function sotu(dir: string): Task[] {
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { year: number; name: string; party: string; text: string });
  const party = docs
    .filter((d) => d.year > 1900 && ['democratic', 'republican'].includes(d.party.toLowerCase()))
    .map((d) => ({ text: d.text, label: d.party }));
  const century = docs.map((d) => ({ text: d.text, label: `${Math.floor((d.year - 1) / 100) + 1}th` }));
  const counts = new Map<string, number>();
  for (const d of docs) counts.set(d.name, (counts.get(d.name) ?? 0) + 1);
  const presidents = [...counts].filter(([, c]) => c >= 8).map(([n]) => n);
  const president = docs.filter((d) => presidents.includes(d.name)).map((d) => ({ text: d.text, label: d.name }));
  return [
    { name: 'sotu party (D/R, after 1900)', rows: party },
    { name: 'sotu century', rows: century },
    { name: `sotu president (${presidents.length} with ≥ 8 addresses)`, rows: president },
  ];
}

function split(rows: Row[], seed: number): { train: Row[]; test: Row[] } {
  const order = Int32Array.from({ length: rows.length }, (_, i) => i);
  shuffleInPlace(order, seededRandom(seed));
  const cut = Math.round(rows.length * 0.7);
  return { train: Array.from(order.subarray(0, cut), (i) => rows[i]), test: Array.from(order.subarray(cut), (i) => rows[i]) };
}

export interface QualityFigure {
  task: string;
  model: string;
  rows: number;
  classes: number;
  mean_chars: number;
  accuracy: number[];
  mean_accuracy: number;
  train_seconds: number;
  parameters: number;
}

export async function measureTextQuality(
  corpora: string,
  models: string[],
  seeds: number[],
  only = '',
  log = console.error,
): Promise<QualityFigure[]> {
  await initBackend('wasm');
  const tasks: Task[] = [];
  const spam = join(corpora, 'spam-assassin', 'data');
  if (existsSync(spam)) tasks.push(spamAssassin(spam, true), spamAssassin(spam, false));
  const speeches = join(corpora, 'sotu', 'data');
  if (existsSync(speeches)) tasks.push(...sotu(speeches));
  const figures: QualityFigure[] = [];
  for (const task of tasks.filter((t) => t.name.includes(only))) {
    const classes = new Set(task.rows.map((r) => r.label)).size;
    const meanChars = Math.round(task.rows.reduce((a, r) => a + String(r.text).length, 0) / task.rows.length);
    for (const name of models) {
      const config = MODELS[name];
      const accuracy: number[] = [];
      let seconds = 0;
      let parameters = 0;
      for (const seed of seeds) {
        const { train: trainRows, test } = split(task.rows, seed);
        const started = performance.now();
        const result = await train({
          spec: { task: 'text-classification', label: 'label', textField: 'text' },
          rows: trainRows,
          hyperparameters: { ...config.hyperparameters, seed },
          architecture: config.sequence ? formerDefault(classes) : undefined,
          maxParameters: 5_000_000,
        });
        seconds += (performance.now() - started) / 1000;
        parameters = result.parameters;
        const model = await LoadedModel.load(result.artifact);
        accuracy.push(((await model.evaluate(test)) as ClassificationMetrics).accuracy);
        model.dispose();
      }
      const figure: QualityFigure = {
        task: task.name,
        model: name,
        rows: task.rows.length,
        classes,
        mean_chars: meanChars,
        accuracy,
        mean_accuracy: accuracy.reduce((a, b) => a + b, 0) / accuracy.length,
        train_seconds: seconds / seeds.length,
        parameters,
      };
      log(JSON.stringify(figure));
      figures.push(figure);
    }
  }
  return figures;
}

export function markdownTable(figures: QualityFigure[]): string {
  const lines = [
    '| task | rows | classes | mean chars | model | holdout accuracy (mean; per seed) | train s | parameters |',
    '| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |',
  ];
  for (const f of figures) {
    const per = f.accuracy.map((a) => a.toFixed(3)).join(', ');
    lines.push(
      `| ${f.task} | ${f.rows} | ${f.classes} | ${f.mean_chars} | ${f.model} | **${f.mean_accuracy.toFixed(3)}** (${per}) | ${f.train_seconds.toFixed(1)} | ${f.parameters.toLocaleString('en')} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [corpora = '/tmp/corpora', models = 'default,former-default', seeds = '1,2,3', only = ''] = process.argv.slice(2);
  const figures = await measureTextQuality(corpora, models.split(','), seeds.split(',').map(Number), only);
  console.log(markdownTable(figures));
}
