import { ApiError } from '@app/common';
import { describe, expect, it } from '@jest/globals';
import { checkInputs } from './inputs.js';

const refusal = (fn: () => void): ApiError => {
  try {
    fn();
  } catch (err) {
    return err as ApiError;
  }
  throw new Error('expected a refusal');
};

describe('checkInputs', () => {
  const tabular = { features: [{ name: 'x1' }, { name: 'x2' }] };

  it('takes numbers and numeric strings for features, and ignores extra columns', () => {
    expect(() => checkInputs(tabular, [{ x1: 1, x2: '2.5', note: 'extra' }])).not.toThrow();
  });

  it('refuses a missing or non-numeric feature with a 400 naming the row and the field', () => {
    const missing = refusal(() => checkInputs(tabular, [{ x1: 1, x2: 2 }, { x1: 3 }]));
    expect([missing.status, missing.code, missing.param]).toEqual([400, 'input_invalid', 'inputs[1].x2']);
    const text = refusal(() => checkInputs(tabular, [{ x1: 'abc', x2: 2 }]));
    expect(text.param).toBe('inputs[0].x1');
  });

  it('needs the text column of a text model as a non-empty string', () => {
    const schema = { text_field: 'body' };
    expect(() => checkInputs(schema, [{ body: 'hello' }])).not.toThrow();
    expect(refusal(() => checkInputs(schema, [{ body: '  ' }])).param).toBe('inputs[0].body');
  });
});
