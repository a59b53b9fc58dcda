import { beforeAll, describe, expect, it } from '@jest/globals';
import { initBackend } from '../backend.js';
import { foundationModel, foundationWeights } from './catalog.js';
import { InputError } from './errors.js';
import { baseFeatures, MAX_CHUNKS, spreadWindows } from './features.js';
import { loadFoundation, type FoundationHandle } from './runtime.js';

const cosine = (a: Float32Array, b: Float32Array) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] ** 2;
    nb += b[i] ** 2;
  }
  return dot / Math.sqrt(na * nb);
};

async function refusal(promise: Promise<unknown>): Promise<InputError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

describe('the text foundation model (USE-lite on wasm)', () => {
  let use: FoundationHandle;
  beforeAll(async () => {
    await initBackend('wasm');
    use = await loadFoundation('universal-sentence-encoder-lite');
  });

  it('is loaded once per process: the same handle every time, with the sha256 of the shipped weights', async () => {
    expect(await loadFoundation('universal-sentence-encoder-lite')).toBe(use);
    expect(use.sha256).toBe((await foundationWeights(foundationModel('universal-sentence-encoder-lite')!)).sha256);
    await expect(loadFoundation('no-such-model')).rejects.toThrow("unknown foundation model 'no-such-model'");
  });

  it('gives one 512-d vector per input, in input order, whatever the batching', async () => {
    const texts = Array.from({ length: 21 }, (_, i) => `Sentence number ${i} talks about ${i % 2 ? 'cats' : 'the economy'}.`);
    const batch = await use.embed(texts);
    expect(batch.vectors).toHaveLength(21);
    expect(batch.vectors[0]).toHaveLength(512);
    for (const i of [0, 7, 16, 20]) {
      const alone = (await use.embed([texts[i]])).vectors[0];
      expect(cosine(alone, batch.vectors[i])).toBeGreaterThan(0.9999);
    }
    expect(batch.tokens.every((t) => t > 3)).toBe(true);
    expect(batch.truncated.every((t) => !t)).toBe(true);
  });

  it('refuses an empty or whitespace-only input by its index instead of dropping its row', async () => {
    expect((await refusal(use.embed(['a fine sentence', '']))).index).toBe(1);
    expect((await refusal(use.embed(['a fine sentence', '  \n\t ', 'another one']))).index).toBe(1);
    expect((await refusal(use.embed(['', 'x']))).message).toMatch(/input\[0\] is empty/);
    expect((await refusal(use.embed(['ok', 'x'.repeat(20_001)]))).message).toMatch(/limit is 20000/);
  });

  it('truncates a text past the token limit and says so', async () => {
    const long = 'word '.repeat(700);
    const out = await use.embed(['short text', long]);
    expect(out.truncated).toEqual([false, true]);
    expect(out.tokens[1]).toBe(512);
    expect(out.vectors).toHaveLength(2);
  });

  it('puts paraphrases closer together than unrelated sentences', async () => {
    const pairs: Array<[string, string, string]> = [
      ['How old are you?', 'What is your age?', 'The train leaves at noon.'],
      ['The cat sat on the mat.', 'A cat was sitting on the rug.', 'Interest rates rose again this quarter.'],
      ['I would like to book a flight to Paris.', 'I want to reserve a plane ticket to Paris.', 'My favourite food is spicy noodles.'],
      ['The movie was fantastic.', 'I loved that film.', 'Please close the window before you leave.'],
      ['He repaired the broken car engine.', 'He fixed the damaged motor of the car.', 'Birds migrate south in winter.'],
    ];
    for (const [a, b, c] of pairs) {
      const [va, vb, vc] = (await use.embed([a, b, c])).vectors;
      expect(cosine(va, vb)).toBeGreaterThan(cosine(va, vc) + 0.2);
    }
  });

  it('gives a head features of the whole document: mean and max over chunks spread from start to end', async () => {
    expect(spreadWindows('abcdefghij', 3, 8)).toEqual(['abc', 'def', 'ghi', 'j']);
    expect(spreadWindows('a'.repeat(100), 10, 3).length).toBe(3);
    const start = 'The senate debated the tariff on imported steel and wool for many hours. '.repeat(20);
    const end = 'Our soldiers fought bravely in the war and the navy defended the coast. '.repeat(20);
    const [whole, head, again] = await baseFeatures(use, [start + end, start, start + end]);
    expect(whole).toHaveLength(1024);
    expect(Array.from(whole)).toEqual(Array.from(again));
    expect(cosine(whole, head)).toBeLessThan(0.99);
    expect(MAX_CHUNKS).toBeGreaterThan(1);
    expect((await refusal(baseFeatures(use, ['fine', ' ']))).index).toBe(1);
  });
});
