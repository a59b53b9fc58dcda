import { describe, expect, it } from '@jest/globals';
import { ApiError } from '@app/common';
import { z } from 'zod';
import { parse } from './validation.guard.js';

const Body = z.object({ name: z.string().min(1), nested: z.object({ n: z.number().int() }).strict().optional() }).strict();

function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    return err as ApiError;
  }
  throw new Error('expected a throw');
}

describe('parse', () => {
  it('returns the parsed value', () => {
    expect(parse(Body, { name: 'x' }, 'body')).toEqual({ name: 'x' });
  });

  it('names an unknown field as the param', () => {
    const e = errorOf(() => parse(Body, { name: 'x', extra: 1 }, 'body'));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(400);
    expect(e.code).toBe('parameter_unknown');
    expect(e.param).toBe('extra');
  });

  it('names a nested bad field by its path', () => {
    const e = errorOf(() => parse(Body, { name: 'x', nested: { n: 1.5 } }, 'body'));
    expect(e.param).toBe('nested.n');
    expect(e.message).toContain('nested.n');
  });

  it('says where a query parameter was wrong', () => {
    const e = errorOf(() => parse(z.object({ limit: z.coerce.number().max(100) }), { limit: '500' }, 'query'));
    expect(e.param).toBe('limit');
    expect(e.message).toContain('query string');
  });

  it('treats a missing body as an empty object, so required fields are named', () => {
    expect(errorOf(() => parse(Body, undefined, 'body')).param).toBe('name');
  });
});
