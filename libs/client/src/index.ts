/**
 * @app/client: the aiaas API for TypeScript.
 *
 * - generated/openapi.d.ts: the API's types, generated from its OpenAPI document by
 *   `npm run client:types` (`npm test` fails when they drift from the code).
 * - client.ts: `new Aiaas({ baseUrl, apiKey })`: `api` (openapi-fetch, typed by route), `call`
 *   (data or a thrown AiaasError), `jobs.wait`, `jobs.stream`, `datasets.upload`, `webhooks.verify`.
 * - transport.ts: retries of 429 (after Retry-After) and 503 with backoff, an Idempotency-Key on every POST.
 * - errors.ts: AiaasError (`status`, `type`, `code`, `message`, `param`, `requestId`).
 */
import type { components } from './generated/openapi.js';

export { Aiaas, DatasetsClient, isFinished, JobsClient, type AiaasOptions, type UploadOptions, type WaitOptions } from './client.js';
export { AiaasConnectionError, AiaasError, JobWaitTimeoutError, type ApiErrorType } from './errors.js';
export { DEFAULT_RETRY, retryAfterMs, retryingFetch, type RetryOptions, type TransportOptions } from './transport.js';
export { parseEventStream, type ServerSentEvent } from './sse.js';
export { verifyWebhook, WebhookVerificationError, type WebhookEvent } from './webhooks.js';
export type { components, operations, paths } from './generated/openapi.js';

type Schemas = components['schemas'];
export type Job = Schemas['Job'];
export type JobEvent = Schemas['JobEvent'];
export type Dataset = Schemas['Dataset'];
export type Model = Schemas['Model'];
export type ModelVersion = Schemas['ModelVersion'];
export type Prediction = Schemas['Prediction'];
export type ApiKey = Schemas['ApiKey'];
export type CreatedApiKey = Schemas['CreatedApiKey'];
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type Tenant = Schemas['Tenant'];
export type Quotas = Schemas['Quotas'];
export type Overview = Schemas['Overview'];
export type Worker = Schemas['Worker'];
export type Me = Schemas['Me'];
