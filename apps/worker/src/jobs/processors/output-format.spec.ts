import { describe, expect, it } from '@jest/globals';
import type { Scores } from '@app/ml';
import { csvField, encodeChunk, neutralised, type OutputLayout } from './output-format.js';

const classifier: OutputLayout = { format: 'csv', inputs: ['text', 'n'], labels: ['neg', 'pos'], version: 3 };
/** A classifier's scores: the probability of `pos` per row. */
const scores = (...pos: number[]): Scores => ({
  labels: ['neg', 'pos'],
  values: Float32Array.from(pos.flatMap((p) => [1 - p, p])),
  predicted: Int32Array.from(pos.map((p) => (p > 0.5 ? 1 : 0))),
});
const lines = (...rows: object[]) => rows.map((r) => JSON.stringify(r));

describe('batch output lines', () => {
  it('CSV: a header in the first chunk only, CRLF, row numbers from the chunk start, a probability column per label', () => {
    const rows = lines({ text: 'fine', n: 1 }, { text: 'bad', n: 2 });
    const first = encodeChunk(classifier, 0, rows, scores(0.75, 0.25), true).toString();
    expect(first).toBe('row,text,n,predicted_label,probability_neg,probability_pos\r\n0,fine,1,pos,0.25,0.75\r\n1,bad,2,neg,0.75,0.25\r\n');
    expect(encodeChunk(classifier, 2, rows.slice(0, 1), scores(0.5), false).toString()).toBe('2,fine,1,neg,0.5,0.5\r\n');
  });

  it('CSV: quotes per RFC 4180 and neutralises the formulas of echoed inputs, not numbers', () => {
    const rows = lines({ text: '=HYPERLINK("http://x")', n: -3 }, { text: 'a, "b"\nc', n: 0 }, { text: '-12.5', n: 1 });
    const out = encodeChunk(classifier, 0, rows, scores(1, 1, 1), false)
      .toString()
      .split('\r\n');
    expect(out[0]).toBe(`0,"'=HYPERLINK(""http://x"")",-3,pos,0,1`);
    expect(out[1]).toBe('1,"a, ""b""\nc",0,pos,0,1');
    expect(out[2]).toBe('2,-12.5,1,pos,0,1');
    for (const bad of ['+1+1', '-1+2', '@SUM(A1)', '\tcmd', '\r=1']) expect(neutralised(bad).startsWith("'")).toBe(true);
    expect(neutralised(null)).toBe('');
    expect(csvField('plain')).toBe('plain');
  });

  it('CSV: a regression has one predicted_value column; no inputs without include_inputs', () => {
    const layout: OutputLayout = { format: 'csv', inputs: null, labels: null, version: 1 };
    const regression: Scores = { labels: null, values: Float32Array.of(2.5), predicted: null };
    expect(encodeChunk(layout, 5, lines({ x: 1 }), regression, true).toString()).toBe('row,predicted_value\r\n5,2.5\r\n');
  });

  it('NDJSON: each line is JSON.stringify of {row, prediction (as a sync prediction), inputs (the row as stored)}', () => {
    const layout: OutputLayout = { format: 'ndjson', inputs: ['text', 'n'], labels: ['neg', 'pos'], version: 3 };
    const s = scores(0.3, 0.9);
    const out = encodeChunk(layout, 7, lines({ text: 'x', n: 1 }, { text: 'y"', n: 2 }), s, true)
      .toString()
      .split('\n');
    const prediction = (i: number) => ({
      label: ['neg', 'pos'][s.predicted![i]],
      probabilities: { neg: s.values[2 * i], pos: s.values[2 * i + 1] },
      version: 3,
    });
    expect(out).toEqual([
      JSON.stringify({ row: 7, prediction: prediction(0), inputs: { text: 'x', n: 1 } }),
      JSON.stringify({ row: 8, prediction: prediction(1), inputs: { text: 'y"', n: 2 } }),
      '',
    ]);
    const regression: Scores = { labels: null, values: Float32Array.of(0.1, Number.NaN), predicted: null };
    const plain = encodeChunk({ ...layout, inputs: null, labels: null }, 0, lines({}, {}), regression, true).toString();
    expect(plain).toBe(
      `${JSON.stringify({ row: 0, prediction: { value: regression.values[0], version: 3 } })}\n{"row":1,"prediction":{"value":null,"version":3}}\n`,
    );
  });
});
