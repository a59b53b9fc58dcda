import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { decryptSecret, encryptSecret, newSecret, parseEncryptionKey, secretBytes, WebhookSecretError } from './secrets.js';

describe('webhook secrets', () => {
  it('makes whsec_ + base64 of 32 random bytes, different each time', () => {
    const s = newSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretBytes(s)).toHaveLength(32);
    expect(newSecret()).not.toBe(s);
  });

  it('decodes a secret with or without its prefix, and refuses malformed ones without quoting them', () => {
    const bytes = randomBytes(32);
    expect(secretBytes(`whsec_${bytes.toString('base64')}`).equals(bytes)).toBe(true);
    expect(secretBytes(bytes.toString('base64')).equals(bytes)).toBe(true);
    for (const bad of [
      'whsec_',
      'whsec_not base64!',
      'whsec_abc',
      `whsec_${randomBytes(8).toString('base64')}`,
      `whsec_${randomBytes(65).toString('base64')}`,
    ]) {
      expect(() => secretBytes(bad)).toThrow(WebhookSecretError);
    }
    let message = '';
    try {
      secretBytes('whsec_s3cr3t-value');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/malformed/);
    expect(message).not.toContain('s3cr3t');
  });

  it('encrypts with AES-256-GCM under a fresh IV, and decrypts back', () => {
    const key = randomBytes(32);
    const secret = newSecret();
    const a = encryptSecret(secret, key);
    const b = encryptSecret(secret, key);
    expect(a).toMatch(/^v1\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(secret.slice(6, 20));
    expect(decryptSecret(a, key)).toBe(secret);
    expect(decryptSecret(b, key)).toBe(secret);
  });

  it('decrypts only under the context it was encrypted for', () => {
    const key = randomBytes(32);
    const enc = encryptSecret('aik_x', key, 'idempotency:ten_a/key_a');
    expect(decryptSecret(enc, key, 'idempotency:ten_a/key_a')).toBe('aik_x');
    expect(() => decryptSecret(enc, key, 'idempotency:ten_a/key_b')).toThrow(/altered/);
    expect(() => decryptSecret(enc, key)).toThrow(/altered/);
  });

  it('fails clearly on a wrong key, a tampered value or a malformed one', () => {
    const key = randomBytes(32);
    const enc = encryptSecret(newSecret(), key);
    expect(() => decryptSecret(enc, randomBytes(32))).toThrow(/wrong encryption key, or the value was altered/);
    const [v, iv, tag, ct] = enc.split('.');
    const flipped = Buffer.from(ct, 'base64');
    flipped[0] ^= 1;
    expect(() => decryptSecret([v, iv, tag, flipped.toString('base64')].join('.'), key)).toThrow(/altered/);
    const otherTag = Buffer.from(tag, 'base64');
    otherTag[15] ^= 0x80;
    expect(() => decryptSecret([v, iv, otherTag.toString('base64'), ct].join('.'), key)).toThrow(/altered/);
    expect(() => decryptSecret(`v2.${iv}.${tag}.${ct}`, key)).toThrow(/malformed/);
    expect(() => decryptSecret('whsec_plaintext', key)).toThrow(/malformed/);
    expect(() => encryptSecret('x', randomBytes(16))).toThrow(/32 bytes/);
  });

  it('reads the encryption key as base64 or hex of 32 bytes, and nothing else', () => {
    const key = randomBytes(32);
    expect(parseEncryptionKey(key.toString('base64')).equals(key)).toBe(true);
    expect(parseEncryptionKey(key.toString('base64url')).equals(key)).toBe(true);
    expect(parseEncryptionKey(` ${key.toString('hex')}\n`).equals(key)).toBe(true);
    expect(parseEncryptionKey(key.toString('hex').toUpperCase()).equals(key)).toBe(true);
    for (const bad of [
      '',
      'short',
      randomBytes(16).toString('base64'),
      randomBytes(31).toString('hex'),
      'g'.repeat(64),
      randomBytes(48).toString('base64'),
    ]) {
      expect(() => parseEncryptionKey(bad)).toThrow(/must be 32 bytes, written as 64 hex digits or as base64/);
    }
  });
});
