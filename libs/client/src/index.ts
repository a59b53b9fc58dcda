/**
 * @app/client: the aiaas API for TypeScript.
 *
 * - generated/openapi.d.ts: the API's types, generated from its OpenAPI document by
 *   `npm run client:types` (`npm test` fails when they drift from the code).
 * - client.ts: `new Aiaas({ baseUrl, apiKey })`: `api` (openapi-fetch, typed by route), `call`
 *   (data or a thrown AiaasError), `jobs.wait`, `jobs.stream`, `datasets.upload`, `webhooks.verify`.
 * - datasets.ts, models.ts: uploads (CSV, NDJSON; images as a zip streamed from a folder) and
 *   `models.predictImages` (files or bytes in, typed predictions out).
 * - files.ts: batch predictions' output files: `files.list`, `get`, `download` (a stream, or one
 *   byte range of it), `delete`.
 * - images/: a folder of class folders read as archive entries, PNG/JPEG sniffing; zip/: the
 *   streaming zip writer (stored entries, exact length up front).
 * - transport.ts: retries of 429 (after Retry-After) and 503 with backoff, an Idempotency-Key on every POST.
 * - errors.ts: AiaasError (`status`, `type`, `code`, `message`, `param`, `requestId`).
 */
import type { components } from './generated/openapi.js';

export { Aiaas, isFinished, JobsClient, type AiaasOptions, type WaitOptions } from './client.js';
export { DatasetsClient, type ImageUploadOptions, type UploadOptions, type UploadProgress, type ZipStream } from './datasets.js';
export { FilesClient, type DownloadOptions, type FileListParams } from './files.js';
export { ModelsClient, type ImagePrediction, type ImagePredictOptions, type SaliencyMap } from './models.js';
export { imageArchiveOf, type ImageArchive } from './images/image-archive.js';
export { ImageFileError, imageKindOf, readImageFile, type ImageKind } from './images/image-file.js';
export { describeSkipped, readImageFolder, type ImageFile, type ImageFolder, type SkippedFile } from './images/image-folder.js';
export { writeZip, zipLength, ZipEntryChangedError, type ZipEntry } from './zip/zip-writer.js';
export { AiaasConnectionError, AiaasError, JobFailedError, JobWaitTimeoutError, type ApiErrorType } from './errors.js';
export { DEFAULT_RETRY, retryAfterMs, retryingFetch, streamingFetch, type RetryOptions, type TransportOptions } from './transport.js';
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
/** An output file (the API's `File`; named apart from the global `File` of web and Node). */
export type FileObject = Schemas['File'];
export type ApiKey = Schemas['ApiKey'];
export type CreatedApiKey = Schemas['CreatedApiKey'];
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type Tenant = Schemas['Tenant'];
export type Quotas = Schemas['Quotas'];
export type Overview = Schemas['Overview'];
export type Worker = Schemas['Worker'];
export type Me = Schemas['Me'];
