import { createHmac, timingSafeEqual } from 'node:crypto';
import { secretBytes } from './secrets.js';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): `v1,` + base64 of
 * HMAC-SHA256(secret bytes, `${id}.${timestamp}.${body}`). During a secret rotation a message carries
 * one signature per live secret, space-separated, so a receiver holding either one verifies it.
 */
export const USER_AGENT = 'aiaas-webhooks/1';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export interface SignInput {
  /** The message id (`msg_…`); a retry keeps it, so receivers can deduplicate. */
  id: string;
  /** Unix time in whole seconds. */
  timestamp: number;
  /** The exact bytes sent: sign after serializing, never re-serialize. */
  body: string;
  /** The endpoint's live secrets (`whsec_…`), newest first; two during a rotation's grace period. */
  secrets: readonly string[];
}

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  'content-type': 'application/json';
  'user-agent': string;
  [name: string]: string;
}

export class SignatureVerificationError extends Error {
  override readonly name = 'SignatureVerificationError';
}

/** The `webhook-signature` header value. */
export function sign(input: SignInput): string {
  checkSignInput(input);
  return input.secrets.map((s) => `v1,${hmac(secretBytes(s), input.id, input.timestamp, input.body).toString('base64')}`).join(' ');
}

export function headersFor(input: SignInput): WebhookHeaders {
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': sign(input),
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
  };
}

/**
 * Checks a received message (for receivers and client libraries): throws SignatureVerificationError
 * unless one `v1` signature matches `secret` and the timestamp is within `toleranceSeconds` of now.
 * `body` must be the raw request body, not a re-serialized parse of it.
 */
export function verify(
  body: string | Buffer,
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
  secret: string,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
  nowSeconds = Math.floor(Date.now() / 1000),
): void {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (id === undefined || ts === undefined || signatures === undefined) {
    throw new SignatureVerificationError('missing webhook-id, webhook-timestamp or webhook-signature header');
  }
  if (!/^\d{1,15}$/.test(ts)) throw new SignatureVerificationError('webhook-timestamp is not a Unix time in seconds');
  const timestamp = Number(ts);
  if (nowSeconds - timestamp > toleranceSeconds) throw new SignatureVerificationError('webhook-timestamp is too old');
  if (timestamp - nowSeconds > toleranceSeconds) throw new SignatureVerificationError('webhook-timestamp is too new');

  const expected = hmac(secretBytes(secret), id, ts, body);
  let matched = false;
  for (const versioned of signatures.split(' ')) {
    const comma = versioned.indexOf(',');
    if (comma < 0 || versioned.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(versioned.slice(comma + 1), 'base64');
    // Compare every candidate (no early exit), each in constant time.
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  if (!matched) throw new SignatureVerificationError('no matching signature');
}

function hmac(key: Buffer, id: string, timestamp: number | string, body: string | Buffer): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

function header(headers: Readonly<Record<string, string | readonly string[] | undefined>>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    const value = typeof v === 'string' ? v : v?.[0];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

function checkSignInput({ id, timestamp, secrets }: SignInput): void {
  if (id === '' || /[\s.]/.test(id)) throw new TypeError('webhook message id must be non-empty, without spaces or dots');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new TypeError('webhook timestamp must be a Unix time in whole seconds');
  if (secrets.length === 0) throw new TypeError('at least one webhook secret is needed to sign');
}
