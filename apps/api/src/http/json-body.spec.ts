import { describe, expect, it } from '@jest/globals';
import { jsonBodyProblem } from './json-body.js';

const deep = (d: number) => '['.repeat(d) + ']'.repeat(d);
const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('jsonBodyProblem', () => {
  it('counts arrays and objects alike, up to and past the limit', () => {
    expect(jsonBodyProblem(bytes(deep(100)), 100)).toBeNull();
    expect(jsonBodyProblem(bytes(deep(101)), 100)).toBe('too_deep');
    expect(jsonBodyProblem(bytes(`${'{"a":'.repeat(101)}1${'}'.repeat(101)}`), 100)).toBe('too_deep');
    expect(jsonBodyProblem(bytes('{"a":[{"b":[1,2]}],"c":{}}'), 4)).toBeNull();
    expect(jsonBodyProblem(bytes('{"a":[{"b":[1,2]}],"c":{}}'), 3)).toBe('too_deep');
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonBodyProblem(bytes(JSON.stringify({ s: deep(500) })), 2)).toBeNull();
    expect(jsonBodyProblem(bytes(JSON.stringify({ s: 'say \\"[[[["' })), 2)).toBeNull();
    expect(jsonBodyProblem(bytes(JSON.stringify({ s: 'é🙂[' })), 1)).toBeNull();
  });

  it('measures nesting, not the count of sibling containers', () => {
    expect(jsonBodyProblem(bytes(JSON.stringify(Array.from({ length: 10_000 }, () => ({ a: [1] })))), 3)).toBeNull();
  });

  it('finds U+0000 in values and keys, and nothing that only looks like it', () => {
    expect(jsonBodyProblem(bytes(JSON.stringify({ name: 'a\u0000b' })))).toBe('nul');
    expect(jsonBodyProblem(bytes(JSON.stringify({ 'k\u0000': 1 })))).toBe('nul');
    expect(jsonBodyProblem(bytes('{"name":"\\u0000"}'))).toBe('nul');
    expect(jsonBodyProblem(bytes(JSON.stringify({ name: '\\u0000 is how you write it' })))).toBeNull();
    expect(jsonBodyProblem(bytes(JSON.stringify({ name: 'a\u0001b\u00e9' })))).toBeNull();
  });
});
