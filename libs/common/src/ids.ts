import { createHash, randomFillSync } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Random bytes are drawn in blocks: one randomFillSync per 8 KiB instead of one per id, since a
// request id is made for every request.
const pool = Buffer.alloc(8192);
let poolOffset = pool.length;

function randomByte(): number {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++];
}

/** Random base62 text of `length` characters, without modulo bias (rejection sampling). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte < 248) out += BASE62[byte % 62];
  }
  return out;
}

export type IdPrefix =
  | 'ten'
  | 'key'
  | 'adk'
  | 'ds'
  | 'mdl'
  | 'mv'
  | 'imp'
  | 'fs'
  | 'job'
  | 'evt'
  | 'whe'
  | 'msg'
  | 'att'
  | 'aud'
  | 'req'
  | 'file';

/** An opaque id with a type prefix, e.g. `ten_3fK9...`. 16 base62 characters carry 95 bits. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(16)}`;
}

export function hasPrefix(id: string, prefix: IdPrefix): boolean {
  return id.startsWith(`${prefix}_`) && /^[a-z]+_[0-9A-Za-z]{1,64}$/.test(id);
}

export type KeyKind = 'tenant' | 'admin';

/** 32 random bytes carry 256 bits; 43 base62 characters carry 256.1 bits. */
const SECRET_LENGTH = 43;
export const KEY_PREFIX_LENGTH = 12;

export function newSecretKey(kind: KeyKind): string {
  return `${kind === 'tenant' ? 'aik' : 'adm'}_${randomBase62(SECRET_LENGTH)}`;
}

/** SHA-256: a slow hash buys nothing for 256-bit random secrets and would cost every request. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function keyKindOf(secret: string): KeyKind | undefined {
  if (secret.startsWith('aik_')) return 'tenant';
  if (secret.startsWith('adm_')) return 'admin';
  return undefined;
}
