import { describe, expect, it } from '@jest/globals';
import { csvField, encodeRows, neutralised, type OutputLayout } from './output-format.js';

const classifier: OutputLayout = { format: 'csv', inputs: ['text', 'n'], labels: ['neg', 'pos'] };
const p = (label: string, pos: number) => ({ label, probabilities: { neg: 1 - pos, pos }, version: 3 });

describe('batch output lines', () => {
  it('CSV: a header in the first chunk only, CRLF, row numbers from the chunk start, a probability column per label', () => {
    const rows = [
      { text: 'fine', n: 1 },
      { text: 'bad', n: 2 },
    ];
    const first = encodeRows(classifier, 0, rows, [p('pos', 0.75), p('neg', 0.25)], true).toString();
    expect(first).toBe('row,text,n,predicted_label,probability_neg,probability_pos\r\n0,fine,1,pos,0.25,0.75\r\n1,bad,2,neg,0.75,0.25\r\n');
    const next = encodeRows(classifier, 2, rows.slice(0, 1), [p('pos', 0.5)], false).toString();
    expect(next).toBe('2,fine,1,pos,0.5,0.5\r\n');
  });

  it('CSV: quotes per RFC 4180 and neutralises the formulas of echoed inputs, not numbers', () => {
    const rows = [
      { text: '=HYPERLINK("http://x")', n: -3 },
      { text: 'a, "b"\nc', n: 0 },
      { text: '-12.5', n: 1 },
    ];
    const out = encodeRows(classifier, 0, rows, [p('pos', 1), p('pos', 1), p('pos', 1)], false)
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
    const layout: OutputLayout = { format: 'csv', inputs: null, labels: null };
    expect(encodeRows(layout, 5, [{ x: 1 }], [{ value: 2.5, version: 1 }], true).toString()).toBe('row,predicted_value\r\n5,2.5\r\n');
  });

  it('NDJSON: one {row, prediction, inputs?} object a line, inputs in the dataset column order', () => {
    const layout: OutputLayout = { format: 'ndjson', inputs: ['text', 'n'], labels: ['neg', 'pos'] };
    const lines = encodeRows(layout, 7, [{ n: 1, text: 'x', other: 'y' }], [p('pos', 0.5)], true)
      .toString()
      .split('\n');
    expect(lines).toEqual([JSON.stringify({ row: 7, prediction: p('pos', 0.5), inputs: { text: 'x', n: 1 } }), '']);
    expect(encodeRows({ ...layout, inputs: null }, 0, [], [], true).length).toBe(0);
  });
});
