import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Endpoint secrets: `whsec_` + base64 of random bytes (Standard Webhooks), and their encryption at
 * rest with AES-256-GCM under a key from configuration. No message here ever quotes a secret or a key.
 */
export const SECRET_PREFIX = 'whsec_';

/** Standard Webhooks asks for secrets of 24 to 64 bytes; we make 32. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const NEW_SECRET_BYTES = 32;

const ENCRYPTION_VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Binds a ciphertext to its purpose, so a blob encrypted under the same key for something else does not decrypt here. */
const WEBHOOK_SECRET_CONTEXT = 'webhook-secret:v1';
const aad = (context: string) => Buffer.from(`aiaas:${context}`);

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;
const HEX = /^[0-9a-fA-F]+$/;

export class WebhookSecretError extends Error {
  override readonly name = 'WebhookSecretError';
}

export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(NEW_SECRET_BYTES).toString('base64');
}

/** The HMAC key of a secret: the base64 after `whsec_` (the prefix is optional, as in the reference library). */
export function secretBytes(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) {
    throw new WebhookSecretError('webhook secret is malformed: expected whsec_ followed by base64');
  }
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
    throw new WebhookSecretError(
      `webhook secret is malformed: it decodes to ${bytes.length} bytes, expected ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES}`,
    );
  }
  return bytes;
}

/**
 * `v1.<iv>.<tag>.<ciphertext>`, each base64; a fresh random IV each time, so equal secrets encrypt differently.
 * `context` (authenticated, not stored) names what the blob is for: it decrypts only under the same context.
 */
export function encryptSecret(plain: string, key: Buffer, context = WEBHOOK_SECRET_CONTEXT): string {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(context));
  const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [ENCRYPTION_VERSION, iv.toString('base64'), tag.toString('base64'), ciphertext.toString('base64')].join('.');
}

export function decryptSecret(enc: string, key: Buffer, context = WEBHOOK_SECRET_CONTEXT): string {
  checkKey(key);
  const parts = enc.split('.');
  if (parts.length !== 4 || parts[0] !== ENCRYPTION_VERSION || !parts.slice(1).every((p) => p === '' || BASE64.test(p))) {
    throw new WebhookSecretError(`encrypted webhook secret is malformed: expected ${ENCRYPTION_VERSION}.<iv>.<tag>.<ciphertext>`);
  }
  const iv = Buffer.from(parts[1], 'base64');
  const tag = Buffer.from(parts[2], 'base64');
  const ciphertext = Buffer.from(parts[3], 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new WebhookSecretError('encrypted webhook secret is malformed: bad IV or tag length');
  }
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(context));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new WebhookSecretError('encrypted webhook secret does not decrypt: wrong encryption key, or the value was altered');
  }
}

/** The encryption key from configuration: 32 bytes as 64 hex digits or as base64 (standard or URL-safe). */
export function parseEncryptionKey(text: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (t.length === KEY_BYTES * 2 && HEX.test(t)) key = Buffer.from(t, 'hex');
  else if (BASE64.test(t) || BASE64URL.test(t)) key = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  if (key === undefined || key.length !== KEY_BYTES) {
    throw new WebhookSecretError(
      `webhook encryption key must be ${KEY_BYTES} bytes, written as ${KEY_BYTES * 2} hex digits or as base64 ` +
        `(e.g. the output of \`openssl rand -base64 32\`); got ${t.length} characters that ${key ? `decode to ${key.length} bytes` : 'are neither'}`,
    );
  }
  return key;
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_BYTES) throw new WebhookSecretError(`webhook encryption key must be ${KEY_BYTES} bytes, got ${key.length}`);
}
