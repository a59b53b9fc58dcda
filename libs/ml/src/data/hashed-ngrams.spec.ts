import { describe, expect, it } from '@jest/globals';
import { fitIdf, forEachNgram, hashedNgrams, ngramHash, tfidf } from './hashed-ngrams.js';

const words = { buckets: 1 << 20, ngrams: 1 };
const pairs = { buckets: 1 << 20, ngrams: 2 };

describe('hashed n-grams', () => {
  it('hashes with FNV-1a 32-bit, fixed across runs and machines', () => {
    // Reference values of FNV-1a over the UTF-16 code units (ASCII here: the same as over bytes).
    expect(ngramHash([''])).toBe(0x811c9dc5);
    expect(ngramHash(['a'])).toBe(0xe40c292c);
    expect(ngramHash(['foobar'])).toBe(0xbf9cf968);
    expect(ngramHash(['foo', 'bar'])).toBe(ngramHash(['foo bar']));
    expect(hashedNgrams('Hello world hello', words)).toEqual({
      indices: Int32Array.from([ngramHash(['hello']) % (1 << 20), ngramHash(['world']) % (1 << 20)]).sort(),
      weights: expect.any(Float32Array),
    });
  });

  it('counts words and adjacent pairs, sorted by bucket, each bucket once', () => {
    const { indices, weights } = hashedNgrams('the cat saw the cat', pairs);
    const expected = new Map<number, number>();
    for (const g of [['the'], ['cat'], ['saw'], ['the'], ['cat'], ['the', 'cat'], ['cat', 'saw'], ['saw', 'the'], ['the', 'cat']]) {
      const b = ngramHash(g) % pairs.buckets;
      expected.set(b, (expected.get(b) ?? 0) + 1);
    }
    expect([...indices]).toEqual([...expected.keys()].sort((a, b) => a - b));
    expect([...weights]).toEqual([...indices].map((b) => expected.get(b)));
    expect(weights.reduce((a, b) => a + b, 0)).toBe(9);
  });

  it('is the same for the same text and case-insensitive', () => {
    const text = 'Dear friend, you have WON $1,000,000! Click here.';
    expect(hashedNgrams(text, pairs)).toEqual(hashedNgrams(text.toLowerCase(), pairs));
    expect(hashedNgrams(text, { ...pairs, buckets: 7 }).indices.every((b) => b >= 0 && b < 7)).toBe(true);
  });

  it('reads unicode words whole (accents, scripts, emoji as a symbol)', () => {
    const visited: string[] = [];
    const tokens = ['naïve', 'café', '東京', '🎉'];
    forEachNgram(tokens, pairs, (_, start, n) => visited.push(tokens.slice(start, start + n).join(' ')));
    expect(visited).toEqual(['naïve', 'naïve café', 'café', 'café 東京', '東京', '東京 🎉', '🎉']);
    expect(hashedNgrams('Naïve CAFÉ', words).indices.length).toBe(2);
    expect(hashedNgrams('naïve', words)).toEqual(hashedNgrams('NAÏVE', words));
  });

  it('gives an empty vector for empty, blank and symbol-free text', () => {
    for (const text of ['', '   ', '\n\t']) {
      const v = hashedNgrams(text, pairs);
      expect([v.indices.length, v.weights.length]).toEqual([0, 0]);
      expect(tfidf(v, null).weights.length).toBe(0);
    }
    expect(hashedNgrams('a', pairs).indices.length).toBe(1);
  });

  it('stops after maxTokens', () => {
    const long = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
    expect(hashedNgrams(long, { ...words, maxTokens: 10 }).indices.length).toBe(10);
    expect(hashedNgrams(long, { ...pairs, maxTokens: 10 }).indices.length).toBe(19);
  });

  it('refuses impossible options', () => {
    expect(() => hashedNgrams('a', { buckets: 0, ngrams: 1 })).toThrow(RangeError);
    expect(() => hashedNgrams('a', { buckets: 8, ngrams: 0 })).toThrow(RangeError);
  });

  it('weights by sublinear TF × smoothed IDF with unit L2 norm', () => {
    const docs = ['apple banana', 'apple cherry', 'apple apple apple date'].map((t) => hashedNgrams(t, words));
    const idf = fitIdf(docs, words.buckets);
    const apple = ngramHash(['apple']) % words.buckets;
    const date = ngramHash(['date']) % words.buckets;
    expect(idf[apple]).toBeCloseTo(1, 6); // in every document
    expect(idf[date]).toBeCloseTo(Math.log(4 / 2) + 1, 6);
    const v = tfidf(docs[2], idf);
    const norm = Math.sqrt(v.weights.reduce((a, w) => a + w * w, 0));
    expect(norm).toBeCloseTo(1, 6);
    const k = (b: number) => [...v.indices].indexOf(b);
    expect(v.weights[k(apple)] / v.weights[k(date)]).toBeCloseTo((1 + Math.log(3)) / (Math.log(2) + 1), 5);
  });
});
