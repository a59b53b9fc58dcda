// The file itself, not @app/webhooks: the client package (npm run client:package) carries it
// and nothing else of the server's libraries.
import { verify } from '../../webhooks/src/signature.js';

export { SignatureVerificationError as WebhookVerificationError } from '../../webhooks/src/signature.js';

/** A delivery's body: `{type, timestamp, data}`, where `data` is the whole object (a job, a model version). */
export interface WebhookEvent<T = Record<string, unknown>> {
  type: string;
  timestamp: string;
  data: T;
}

/**
 * Checks a delivery's Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) against the endpoint's `whsec_…` secret and returns the parsed event;
 * throws WebhookVerificationError otherwise. `body` must be the raw bytes received.
 */
export function verifyWebhook<T = Record<string, unknown>>(
  body: string | Uint8Array,
  headers: Headers | Readonly<Record<string, string | readonly string[] | undefined>>,
  secret: string,
  opts: { toleranceSeconds?: number } = {},
): WebhookEvent<T> {
  const plain = headers instanceof Headers ? Object.fromEntries(headers.entries()) : headers;
  const raw = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  verify(raw, plain, secret, opts.toleranceSeconds);
  return JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8')) as WebhookEvent<T>;
}
