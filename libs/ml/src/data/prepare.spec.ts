import { describe, expect, it } from '@jest/globals';
import { thrown } from '../testing.js';
import { seededRandom } from '../random.js';
import type { DatasetSpec, Row } from '../types.js';
import { encodeRows, prepareTraining } from './prepare.js';
import { buildVocabulary, chooseSequenceLength, tokenize } from './text.js';
import { sortLabels } from './values.js';

const options = (validationSplit = 0.25) => ({ validationSplit, random: seededRandom(1) });

describe('text preparation', () => {
  it('lower-cases and splits words from punctuation', () => {
    expect(tokenize("Hello, World! It's 3.5 stars... naïve café")).toEqual([
      'hello',
      ',',
      'world',
      '!',
      "it's",
      '3',
      '.',
      '5',
      'stars',
      '.',
      '.',
      '.',
      'naïve',
      'café',
    ]);
    expect(tokenize('   ')).toEqual([]);
  });

  it('builds a capped vocabulary, most frequent first, after the padding and out-of-vocabulary ids', () => {
    const vocabulary = buildVocabulary([['b', 'a', 'b'], ['c', 'b', 'a'], ['d']], 4);
    expect(vocabulary).toEqual(['<pad>', '<oov>', 'b', 'a']);
  });

  it('chooses the sequence length at the 95th percentile of the training texts, within 4 to 256', () => {
    expect(chooseSequenceLength(Array.from({ length: 100 }, (_, i) => i + 1))).toBe(95);
    expect(chooseSequenceLength([1, 2])).toBe(4);
    expect(chooseSequenceLength([10_000])).toBe(256);
  });

  it('takes the vocabulary from the training split only, and pads, cuts and marks unknown words', () => {
    const rows: Row[] = [
      { text: 'red apple', label: 'fruit' },
      { text: 'green apple', label: 'fruit' },
      { text: 'blue car', label: 'vehicle' },
      { text: 'onlyinvalidation', label: 'vehicle' },
    ];
    const spec: DatasetSpec = { task: 'text-classification', label: 'label', textField: 'text' };
    const prepared = prepareTraining(spec, rows, { ...options(0.25), sequenceLength: 2, textModel: 'sequence' });
    const pre = prepared.metadata.preprocessing;
    if (pre.kind !== 'text') throw new Error('text expected');
    // Each text's first word is its own: exactly the validation row's is missing.
    expect(rows.filter((r) => !pre.vocabulary.includes(String(r.text).split(' ')[0]))).toHaveLength(1);
    expect(prepared.validation!.n).toBe(1);
    expect(pre.sequence_length).toBe(2);
    const encoded = encodeRows(prepared.metadata, [{ text: 'apple apple apple' }, { text: 'zebra' }, { text: '' }], {
      labels: false,
      missing: 'refuse',
      keepTokens: true,
    });
    const apple = pre.vocabulary.indexOf('apple');
    expect(Array.from(encoded.x)).toEqual([apple, apple, 1, 0, 0, 0]);
    expect(encoded.tokens).toEqual([['apple', 'apple'], ['zebra'], []]);
  });
});

describe('tabular preparation', () => {
  const rows: Row[] = Array.from({ length: 8 }, (_, i) => ({ a: i, b: '7', c: i % 2 ? null : 10 * i, label: i % 2 ? 'odd' : 'even' }));

  it('standardizes with statistics of the training split only, a constant column left at zero', () => {
    const prepared = prepareTraining({ task: 'classification', label: 'label' }, rows, options(0.25));
    const pre = prepared.metadata.preprocessing;
    if (pre.kind !== 'tabular') throw new Error('tabular expected');
    expect(pre.features).toEqual(['a', 'b', 'c']);
    expect(prepared.train.n).toBe(6);
    expect(prepared.validation!.n).toBe(2);
    const trainA = Array.from({ length: 6 }, (_, k) => prepared.train.x[k * 3]);
    // Standardized on its own statistics, the training split has mean 0 and variance 1.
    expect(trainA.reduce((s, v) => s + v, 0) / 6).toBeCloseTo(0, 5);
    expect(trainA.reduce((s, v) => s + v * v, 0) / 6).toBeCloseTo(1, 5);
    expect(pre.std[1]).toBe(1);
    expect(Array.from({ length: 6 }, (_, k) => prepared.train.x[k * 3 + 1])).toEqual([0, 0, 0, 0, 0, 0]);
    // Missing values sit at the training mean (0 once standardized).
    const missing = encodeRows(prepared.metadata, [{ a: null, b: 7, c: '' }], { labels: false, missing: 'refuse' });
    expect(missing.x[0]).toBe(0);
    expect(missing.x[2]).toBe(0);
  });

  it('encodes labels in a stable order, numerically when they are numbers', () => {
    expect(sortLabels(['10', '9', '1'])).toEqual(['1', '9', '10']);
    expect(sortLabels(['b', 'B', 'a'])).toEqual(['B', 'a', 'b']);
    const prepared = prepareTraining({ task: 'classification', label: 'label' }, rows, options(0));
    expect(prepared.metadata.labels).toEqual(['even', 'odd']);
    expect(Array.from(prepared.train.y!)).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
    expect(prepared.validation).toBeNull();
  });

  it('uses the given feature columns in order', () => {
    const prepared = prepareTraining(
      { task: 'regression', label: 'a', features: ['c', 'b'] },
      rows.map((r) => ({ ...r, c: 1 })),
      options(0),
    );
    expect(prepared.metadata.input_schema.features).toEqual([
      { name: 'c', type: 'number' },
      { name: 'b', type: 'number' },
    ]);
    expect(prepared.metadata.preprocessing).toMatchObject({ kind: 'tabular', target: { mean: 3.5 } });
  });

  it('lists every bad row with its number and column', () => {
    const bad = rows.map((r) => ({ ...r }));
    bad[2].a = 'n/a';
    bad[5].label = '';
    const error = thrown(() => prepareTraining({ task: 'classification', label: 'label' }, bad, options()));
    expect(error.code).toBe('invalid_data');
    expect(error.details).toEqual(["row 6 has no label 'label'"]);
    bad[5].label = 'odd';
    expect(thrown(() => prepareTraining({ task: 'classification', label: 'label' }, bad, options())).details).toEqual([
      "row 3: feature 'a' is not a number ('n/a')",
    ]);
    expect(thrown(() => prepareTraining({ task: 'classification', label: 'label' }, [], options())).message).toBe(
      'The dataset has no rows',
    );
    expect(thrown(() => prepareTraining({ task: 'classification', label: 'label', features: ['a', 'zz'] }, rows, options())).message).toBe(
      "No row has the feature column 'zz'",
    );
    expect(thrown(() => prepareTraining({ task: 'text-classification', label: 'label', textField: 'body' }, rows, options())).message).toBe(
      "No row has the text field 'body'",
    );
    const regression = thrown(() => prepareTraining({ task: 'regression', label: 'label' }, rows, options()));
    expect(regression.details[0]).toBe("row 1: label 'label' is not a number ('even')");
  });

  it('refuses prediction inputs that do not fit, naming the input', () => {
    const prepared = prepareTraining({ task: 'classification', label: 'label' }, rows, options(0));
    const error = thrown(() =>
      encodeRows(prepared.metadata, [{ a: 1, b: 2, c: 3 }, { a: 1, c: 'x' }, 'row' as unknown as Row], {
        labels: false,
        what: 'inputs',
        missing: 'refuse',
      }),
    );
    expect(error.code).toBe('invalid_input');
    expect(error.details).toEqual([
      "inputs[1] is missing feature 'b'",
      "inputs[1]: feature 'c' is not a number ('x')",
      'inputs[2] is not an object',
    ]);
    const unknown = thrown(() =>
      encodeRows(prepared.metadata, [{ a: 1, b: 2, c: 3, label: 'prime' }], { labels: true, missing: 'impute' }),
    );
    expect(unknown.details[0]).toBe("row 1: label 'prime' is not one of the model's labels (even, odd)");
  });
});
