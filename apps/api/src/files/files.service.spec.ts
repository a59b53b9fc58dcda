import { describe, expect, it } from '@jest/globals';
import { ApiError } from '@app/common';
import { byteRange } from './files.service.js';

describe('Range', () => {
  it('reads one range in each of its forms, clamped to the size', () => {
    expect(byteRange('bytes=0-9', 100)).toEqual({ start: 0, end: 10, partial: true });
    expect(byteRange('bytes=90-', 100)).toEqual({ start: 90, end: 100, partial: true });
    expect(byteRange('bytes=-10', 100)).toEqual({ start: 90, end: 100, partial: true });
    expect(byteRange('bytes=-500', 100)).toEqual({ start: 0, end: 100, partial: true });
    expect(byteRange('bytes=50-5000', 100)).toEqual({ start: 50, end: 100, partial: true });
  });

  it('answers the whole file without a range, for ranges it does not read and for several ranges', () => {
    for (const h of [undefined, '', 'items=0-1', 'bytes=0-1,5-6', 'bytes=9-2', 'bytes=-', 'bytes=a-b']) {
      expect(byteRange(h, 100)).toEqual({ start: 0, end: 100, partial: false });
    }
  });

  it('is a 416 with Content-Range past the end, or for an empty suffix', () => {
    for (const h of ['bytes=100-', 'bytes=150-160', 'bytes=-0']) {
      try {
        byteRange(h, 100);
        throw new Error(`no 416 for ${h}`);
      } catch (err) {
        expect(err).toBeInstanceOf(ApiError);
        expect((err as ApiError).status).toBe(416);
        expect((err as ApiError).headers).toEqual({ 'Content-Range': 'bytes */100' });
      }
    }
  });
});
