import { describe, expect, it } from '@jest/globals';
import { resumePoint } from './job-stream.js';

describe('resumePoint (Last-Event-ID)', () => {
  it('takes an event sequence number', () => {
    expect(resumePoint('17')).toBe(17);
    expect(resumePoint(' 3 ')).toBe(3);
    expect(resumePoint(['5', '6'])).toBe(5);
  });

  it('starts from the beginning for anything else', () => {
    for (const v of [undefined, '', '-1', '1.5', '1e308', '0x10', 'abc', '99999999999999999999', "1' OR 1=1"])
      expect([v, resumePoint(v)]).toEqual([v, 0]);
  });
});
