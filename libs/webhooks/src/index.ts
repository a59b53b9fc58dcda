/**
 * @app/webhooks: the building blocks of webhook delivery, with no Nest, Prisma or Redis in them.
 *
 * - secrets.ts: `whsec_` endpoint secrets, and their AES-256-GCM encryption at rest under a configured key.
 * - signature.ts: Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
 *   one `v1,` signature per live secret during a rotation; `verify` for receivers.
 * - schedule.ts: the retry schedule (`WEBHOOK_RETRY_SCHEDULE`, default 5s,5m,30m,2h,5h,10h,10h) with
 *   ±10 % jitter, and `Retry-After`.
 * - destination.ts: the SSRF guard, run at registration and before each attempt; only globally reachable
 *   addresses (special-addresses.ts: the IANA special-purpose registries) that are not this host's own or its
 *   gateway (host-addresses.ts), unless the operator allows a host (`WEBHOOK_ALLOWED_HOSTS`).
 * - deliver.ts: one attempt: connect to the checked address, 15 s for everything, no redirects; never throws.
 *
 * The caller (API and worker) owns endpoints, messages and attempts, and decides on retries:
 * 2xx is done, 410 disables the endpoint, otherwise wait max(nextDelayMs, retryAfterMs) or give up.
 */
export * from './secrets.js';
export * from './signature.js';
export * from './schedule.js';
export * from './destination.js';
export * from './deliver.js';
