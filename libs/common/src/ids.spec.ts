import { describe, expect, it } from '@jest/globals';
import { hashSecret, hasPrefix, keyKindOf, newId, newSecretKey, randomBase62 } from './ids.js';

describe('ids and secrets', () => {
  it('makes base62 strings of the asked length', () => {
    for (const n of [1, 16, 43, 100]) expect(randomBase62(n)).toMatch(new RegExp(`^[0-9A-Za-z]{${n}}$`));
  });

  it('uses every base62 character, roughly evenly (no modulo bias)', () => {
    const counts = new Map<string, number>();
    for (const c of randomBase62(62_000)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it('prefixes ids with their type', () => {
    const id = newId('ten');
    expect(id).toMatch(/^ten_[0-9A-Za-z]{16}$/);
    expect(hasPrefix(id, 'ten')).toBe(true);
    expect(hasPrefix(id, 'key')).toBe(false);
  });

  it('makes keys of 32 random bytes: aik_ for tenants, adm_ for admins', () => {
    const t = newSecretKey('tenant');
    const a = newSecretKey('admin');
    expect(t).toMatch(/^aik_[0-9A-Za-z]{43}$/);
    expect(a).toMatch(/^adm_[0-9A-Za-z]{43}$/);
    expect(keyKindOf(t)).toBe('tenant');
    expect(keyKindOf(a)).toBe('admin');
    expect(keyKindOf('sk_live_x')).toBeUndefined();
    expect(newSecretKey('tenant')).not.toBe(t);
  });

  it('hashes secrets with SHA-256, hex', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
