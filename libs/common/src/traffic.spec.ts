import { describe, expect, it } from '@jest/globals';
import { pickByWeight } from './traffic.js';

describe('pickByWeight', () => {
  const split = [
    { version: 1, weight: 90 },
    { version: 2, weight: 10 },
  ];

  it('gives each version the slice of [0, 1) its weight owns', () => {
    expect(pickByWeight(split, 0)).toBe(1);
    expect(pickByWeight(split, 0.8999)).toBe(1);
    expect(pickByWeight(split, 0.9)).toBe(2);
    expect(pickByWeight(split, 0.9999)).toBe(2);
  });

  it('never picks a version of weight 0, and a single target always', () => {
    const zero = [
      { version: 1, weight: 0 },
      { version: 2, weight: 100 },
    ];
    for (const r of [0, 0.3, 0.99]) expect(pickByWeight(zero, r)).toBe(2);
    expect(pickByWeight([{ version: 7, weight: 100 }], 0.5)).toBe(7);
  });
});
