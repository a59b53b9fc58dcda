import { beforeAll, describe, expect, it } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import { decodeArtifact } from './artifact/format.js';
import { importArtifact } from './artifact/import.js';
import { initBackend } from './backend.js';
import { checkLoads, evaluate, loadModel } from './predict.js';
import { seededRandom } from './random.js';
import { sequenceTextArchitecture, thrown } from './testing.js';
import { train } from './train.js';
import type { ClassificationMetrics, Row } from './types.js';

const FILLER =
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were'.split(' ');

/** Long documents (~3,000 characters) of filler; the class shows only in a keyword near the end, past any truncation. */
function longDocuments(n: number, seed: number): Row[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => {
    const c = i % 3;
    const words = Array.from({ length: 700 }, () => FILLER[Math.floor(random() * FILLER.length)]);
    words[650 + Math.floor(random() * 40)] = ['Harbour', 'Vaccine', 'Election'][c];
    return { text: `${words.join(' ')}.`, topic: ['shipping', 'health', 'politics'][c] };
  });
}

const spec = { task: 'text-classification' as const, label: 'topic', textField: 'text' };
const rows = longDocuments(150, 7);
const hp = { epochs: 20, learning_rate: 0.1, validation_split: 0, seed: 4, max_vocabulary: 4096 };

describe.each(['cpu', 'wasm'] as const)('the default text model on %s', (backend) => {
  let baseline = 0;
  beforeAll(async () => {
    await initBackend(backend);
    baseline = tf.memory().numTensors;
  });

  it('reads long documents whole: a keyword after token 650 decides the class', async () => {
    const result = await train({ spec, rows, hyperparameters: hp });
    expect((result.metrics as ClassificationMetrics).accuracy).toBeGreaterThanOrEqual(0.95);
    expect(result.parameters).toBe(4096 * 3 + 3);
    expect(result.hyperparameters).toMatchObject({ max_vocabulary: 4096, ngrams: 1 });
    expect(result.hyperparameters).not.toHaveProperty('embedding_dim');
    const topology = JSON.stringify(result.architecture);
    expect(topology).not.toContain('Embedding');
    // The artifact's evaluation of the same rows is the training's evaluation, number for number.
    expect(await evaluate(result.artifact, rows)).toEqual(result.metrics);
    const model = await loadModel(result.artifact);
    const { predictions, explanations } = await model.predict([{ text: rows[1].text }, { text: '' }], { explain: true });
    expect(predictions[0]).toMatchObject({ label: 'health' });
    const tokens = explanations![0] as Array<{ token: string; score: number }>;
    expect(tokens.length).toBe(701);
    expect([...tokens].sort((a, b) => b.score - a.score)[0].token).toBe('vaccine');
    expect(explanations![1]).toEqual([]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('gives byte-identical artifacts for the same seed', async () => {
    const run = (seed: number) => train({ spec, rows: rows.slice(0, 60), hyperparameters: { ...hp, epochs: 2, seed } });
    const [a, b, c] = [await run(9), await run(9), await run(10)];
    expect(a.sha256).toBe(b.sha256);
    expect(c.sha256).not.toBe(a.sha256);
  });

  it('adds a projection of embedding_dim when asked (a TF-IDF-weighted embedding bag)', async () => {
    const result = await train({ spec, rows: rows.slice(0, 60), hyperparameters: { ...hp, epochs: 1, embedding_dim: 8 } });
    expect(result.parameters).toBe(4096 * 8 + 8 * 3 + 3);
  });

  it('halves the default buckets until the model fits max_model_parameters', async () => {
    const result = await train({ spec, rows: rows.slice(0, 60), hyperparameters: { epochs: 1, seed: 1 }, maxParameters: 30_000 });
    expect(result.hyperparameters.max_vocabulary).toBe(8192);
    expect(result.parameters).toBeLessThanOrEqual(30_000);
  });

  it('still trains, loads and explains the sequence model (versions of the former default)', async () => {
    const result = await train({
      spec,
      rows: rows.slice(0, 60),
      hyperparameters: { epochs: 1, seed: 1 },
      architecture: sequenceTextArchitecture(3),
    });
    expect(decodeArtifact(result.artifact).metadata.preprocessing.kind).toBe('text');
    const model = await loadModel(result.artifact);
    const { explanations } = await model.predict([{ text: 'Vaccine for the harbour' }], { explain: true });
    expect((explanations![0] as Array<{ token: string }>).map((t) => t.token)).toEqual(['vaccine', 'for', 'the', 'harbour']);
    model.dispose();
  });
});

describe('a downloaded hashed n-gram artifact through the import path', () => {
  it('imports byte for byte, loads, and refuses a tampered preprocessing', async () => {
    await initBackend('wasm');
    const result = await train({ spec, rows: rows.slice(0, 60), hyperparameters: { ...hp, epochs: 1 } });
    const json = JSON.parse(result.artifact.toString('utf8'));
    const imported = importArtifact(json);
    expect(imported.sha256).toBe(result.sha256);
    await checkLoads(imported.artifact);
    const tampered = JSON.parse(result.artifact.toString('utf8'));
    tampered.userDefinedMetadata.aiaas.preprocessing.idf = 'AAAA';
    tampered.userDefinedMetadata.aiaas.preprocessing.ngrams = 9;
    expect(thrown(() => importArtifact(tampered)).details).toEqual(['preprocessing.ngrams must be an integer from 1 to 3']);
    delete tampered.userDefinedMetadata.aiaas.preprocessing.ngrams;
    tampered.userDefinedMetadata.aiaas.preprocessing.ngrams = 2;
    expect(thrown(() => importArtifact(tampered)).details).toEqual(['preprocessing.idf must be base64 of 4096 float32 values']);
  });
});
