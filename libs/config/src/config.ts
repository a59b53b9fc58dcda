import { DEFAULT_SCHEDULE_TEXT, parseAllowedHosts, parseEncryptionKey, parseSchedule } from '@app/webhooks';
import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';

/** The environment, parsed once at boot. Nothing else in the code base reads `process.env`. */
const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/aiaas'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  /**
   * One Redis (`redis://host:port`, `rediss://` for TLS), or a Redis Cluster given by some of its
   * nodes (`redis-cluster://h1:7000,h2:7001`); REDIS_CLUSTER_NODES says the same and wins.
   */
  REDIS_URL: z
    .string()
    .regex(
      /^(rediss?:\/\/\S+|redis-cluster:\/\/[^\s,/]+:\d+(,[^\s,/]+:\d+)*\/?)$/,
      'must be redis://host:port, rediss://… or redis-cluster://host:port,host:port,…',
    )
    .default('redis://127.0.0.1:6379'),
  /** A Redis Cluster's nodes, `host:port` comma-separated (some are enough: the client discovers the rest). */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,/]+:\d+(,[^\s,/]+:\d+)*$/, 'must be host:port, comma-separated')
    .optional(),
  /** Prefix of every Redis key this deployment writes; tests give each run its own. */
  REDIS_PREFIX: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.:-]+$/)
    .default('aiaas'),
  ADMIN_API_KEY: z
    .string()
    .regex(/^adm_[A-Za-z0-9]{20,}$/, 'must be adm_ followed by at least 20 letters or digits')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long a validated key stays in an API instance's memory; revocations are pushed sooner over Redis. */
  KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /** JSON bodies (dataset records and imported models are the large ones); CSV and NDJSON uploads stream. */
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  IDEMPOTENCY_TTL_HOURS: z.coerce.number().int().min(24).default(24),
  /** A POST's answer larger than this is not kept for replay (the key stays claimed; a replay answers 409). */
  IDEMPOTENCY_MAX_ANSWER_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
  /** Unknown keys one client address may present per minute before it gets 429 without a database lookup; 0: no limit. */
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(0).default(60),

  // ---- Request bodies and uploads (docs/security.md) ------------------------------------------------
  /** Longest pause between two pieces of any request body before it is a 408. */
  BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** Longest time to receive a JSON body (at most BODY_LIMIT_BYTES). */
  BODY_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** Longest time to receive a streamed upload (CSV, NDJSON). */
  UPLOAD_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(15 * 60_000),
  /** Streamed uploads one tenant may have in flight across all API instances; more are a 429. */
  UPLOADS_PER_TENANT: z.coerce.number().int().min(1).max(1_000).default(4),
  /** Bytes of one NDJSON line or CSV record. */
  DATASET_MAX_RECORD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  /** How long a batch prediction's output file is kept once finished (then the sweeper deletes it and gives its storage back). */
  FILE_RETENTION_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(30 * 24 * 3600),
  /** Rows a batch prediction scores and commits per checkpoint; 0: by input (4,096 tabular rows, 256 texts, 32 images). */
  BATCH_PREDICTION_CHUNK_ROWS: z.coerce.number().int().min(0).max(100_000).default(0),
  /** Bytes of foundation-model features the workers keep for reuse (transfer learning), across all tenants. */
  FEATURE_CACHE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(2 * 1024 ** 3),
  /** Encoded bytes of one image of an image dataset (a zip entry, or a record's base64 once decoded). */
  DATASET_IMAGE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  /** width × height of one image of an image dataset, refused from its header before any pixel is allocated. */
  DATASET_IMAGE_MAX_PIXELS: z.coerce
    .number()
    .int()
    .min(1)
    .default(4096 * 4096),
  /** A zip entry may inflate to at most this many times its compressed size (past its first MiB): zip bombs. */
  DATASET_ZIP_MAX_RATIO: z.coerce.number().min(1).default(100),
  /** Inflated bytes of one zip upload, whatever the tenant's storage quota. */
  DATASET_ZIP_MAX_INFLATED_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 ** 3),
  /** Columns of one dataset. */
  DATASET_MAX_COLUMNS: z.coerce.number().int().min(2).default(10_000),
  /** PostgreSQL ends a session idle inside a transaction this long (a backstop; 0 turns it off). */
  DATABASE_IDLE_IN_TRANSACTION_MS: z.coerce.number().int().min(0).default(60_000),

  // ---- Webhooks (issue 6) ------------------------------------------------------------------------
  /** 32 bytes (hex or base64) that encrypt webhook secrets at rest. Required in production. */
  WEBHOOK_SECRET_KEY: z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      try {
        parseEncryptionKey(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  /** A delivery attempt's whole time budget (connect, answer, body). */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(15_000),
  /** Delays between attempts, e.g. `1s,2s,5s`; units ms, s, m, h. */
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .default(DEFAULT_SCHEDULE_TEXT)
    .superRefine((v, ctx) => {
      try {
        parseSchedule(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  /** Hosts exempt from the private-address guard, comma-separated (tests: `127.0.0.1,localhost`). */
  WEBHOOK_ALLOWED_HOSTS: z.string().default(''),
  /** After a rotation, how long the previous secret still signs (both signatures are sent). */
  WEBHOOK_SECRET_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3600 * 1000),
  /** Deliveries one worker makes at once. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1_000).default(32),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  WORKER_INFERENCE_JOBS: z.coerce.number().int().min(1).max(256).default(32),
  WORKER_HEARTBEAT_MS: z.coerce.number().int().min(100).default(5_000),
  INSTANCE_ID: z.string().optional(),
  /** Forces libs/ml's TF.js backend (tfjs-node-gpu, tfjs-node, wasm, cpu; gpu, node); unset: the best that loads. */
  TF_BACKEND: z.string().min(1).optional(),
  /** BullMQ job lock: renewed every half of it by the worker's parent process (never blocked by TF.js). */
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(500).default(30_000),
  /** How often a worker looks for jobs whose lock expired (their worker died) and hands them back. */
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(200).default(30_000),
  /** How often a job may be recovered from a stall before BullMQ fails it. */
  WORKER_MAX_STALLED_COUNT: z.coerce.number().int().min(0).max(100).default(2),
  /** On SIGTERM: how long running jobs may take to finish before they are handed back. */
  WORKER_SHUTDOWN_DEADLINE_MS: z.coerce.number().int().min(0).default(30_000),
  /** A child that does not stop this long after a cancellation is killed and replaced. */
  WORKER_CANCEL_KILL_MS: z.coerce.number().int().min(100).default(1_500),
  /** The reconciler's period, and the age a queued job must have before it is checked against the queues. */
  WORKER_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  WORKER_RECONCILE_AGE_MS: z.coerce.number().int().min(0).default(5_000),
  /** A gpu job queued this long while no GPU worker is online is failed (`no_gpu_worker`) by the reconciler. */
  JOB_GPU_WAIT_TIMEOUT_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(24 * 3600),
  /** Inference outputs: predictions kept in a job's result and per page of `GET /v1/jobs/{id}/output`. */
  JOB_OUTPUT_PAGE_SIZE: z.coerce.number().int().min(1).max(100_000).default(1_000),
  /** TEST ONLY: the worker claims a GPU backend (and takes the -gpu queues); no machine here has one. */
  WORKER_FAKE_GPU: z.enum(['0', '1', 'true', 'false']).optional(),

  // ---- Job admission (issue 16): POST /v1/jobs writes the submissions that arrive together as one batch ----
  /**
   * How long a batch waits for more submissions after its first when no batch is being written;
   * 0: it is written at the end of the event-loop turn (the submissions that arrive while a batch is
   * being written always form the next one).
   */
  ADMISSION_WINDOW_MS: z.coerce.number().min(0).max(1_000).default(0),
  /** A batch closes at this many submissions; 1 turns batching off. */
  ADMISSION_MAX_BATCH: z.coerce.number().int().min(1).max(10_000).default(256),
  /** …or this many bytes of JSON (inline inference inputs are the large ones); a larger submission is a batch of its own. */
  ADMISSION_MAX_BATCH_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  /** Batches one API instance writes at once. */
  ADMISSION_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(1),

  // ---- Sync inference (issue 5): POST /v1/models/{id}/predict under Prefer: wait --------------
  /** A batch of sync predictions for one version closes at this many rows; 1 turns batching off. */
  PREDICT_BATCH_MAX_ROWS: z.coerce.number().int().min(1).max(100_000).default(64),
  /** …or this long after its first request, whichever comes first. */
  PREDICT_BATCH_DELAY_MS: z.coerce.number().min(0).max(1_000).default(2),
  /** Sync prediction requests one worker holds at once (BullMQ concurrency of the predict queue). */
  PREDICT_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(256),
  /** How long an API instance reuses a model's resolved versions and aliases (changes are also pushed). */
  PREDICT_LOOKUP_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  /** Loaded models each inference child keeps, bounded by their artifacts' bytes (LRU). */
  WORKER_MODEL_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(256 * 1024 * 1024),
  /** Compute children that serve predictions (sync, and async inference jobs), apart from the training children. */
  WORKER_INFERENCE_CHILDREN: z.coerce.number().int().min(1).max(64).default(1),

  // ---- Model imports: POST /v1/models/{id}/versions is loaded once by a worker before it is a version ----
  /** How long an import waits for a worker's load check before it answers 503 no_worker_available. */
  IMPORT_CHECK_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  /** Imports of one tenant waiting for their load check at once (across API instances); more: 429. */
  IMPORT_CHECKS_PER_TENANT: z.coerce.number().int().min(1).max(100).default(2),
  // ---- GET /metrics: the admin key, or one of these --------------------------------------------
  /** A bearer token for Prometheus scrapers only (at least 24 characters); unset: none. */
  METRICS_TOKEN: z.string().min(24, 'must be at least 24 characters').regex(/^\S+$/, 'must not contain spaces').optional(),
  /** Scraper addresses answered without a key, comma-separated CIDRs or addresses (e.g. `10.0.5.0/24`); unset: none. */
  METRICS_ALLOW_FROM: z
    .string()
    .default('')
    .superRefine((v, ctx) => {
      try {
        parseCidrs(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
});

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  databaseUrl: string;
  databasePoolSize: number;
  redisUrl: string;
  /** The Redis Cluster's seed nodes (REDIS_CLUSTER_NODES or a redis-cluster:// REDIS_URL); null for one Redis. */
  redisClusterNodes: Array<{ host: string; port: number }> | null;
  redisPrefix: string;
  adminApiKey?: string;
  logLevel: string;
  keyCacheTtlMs: number;
  bodyLimitBytes: number;
  idempotencyTtlHours: number;
  bodyIdleTimeoutMs: number;
  bodyTimeoutMs: number;
  uploadTimeoutMs: number;
  uploadsPerTenant: number;
  datasetMaxRecordBytes: number;
  datasetMaxColumns: number;
  datasetImageMaxBytes: number;
  datasetImageMaxPixels: number;
  datasetZipMaxRatio: number;
  datasetZipMaxInflatedBytes: number;
  featureCacheMaxBytes: number;
  fileRetentionSeconds: number;
  batchPredictionChunkRows: number;
  databaseIdleInTransactionMs: number;
  idempotencyMaxAnswerBytes: number;
  authFailuresPerMinute: number;

  // ---- Webhooks (issue 6) ----
  webhookSecretKey: Buffer;
  webhookTimeoutMs: number;
  /** ms between attempts */
  webhookRetrySchedule: readonly number[];
  webhookAllowedHosts: ReadonlySet<string>;
  webhookSecretGraceMs: number;
  webhookConcurrency: number;
  workerConcurrency: number;
  /** Inference jobs a worker runs at once: they predict through the inference children (batched), not a compute child. */
  workerInferenceJobs: number;
  workerHeartbeatMs: number;
  /** Identifies this process in logs, heartbeats and cache invalidation. */
  instanceId: string;
  tfBackend: string | null;
  workerLockDurationMs: number;
  workerStalledIntervalMs: number;
  workerMaxStalledCount: number;
  workerShutdownDeadlineMs: number;
  workerCancelKillMs: number;
  workerReconcileIntervalMs: number;
  workerReconcileAgeMs: number;
  jobGpuWaitTimeoutSeconds: number;
  jobOutputPageSize: number;
  /** TEST ONLY (WORKER_FAKE_GPU): report a GPU and consume the -gpu queues. */
  workerFakeGpu: boolean;

  // ---- Job admission (issue 16) ----
  admissionWindowMs: number;
  admissionMaxBatch: number;
  admissionMaxBatchBytes: number;
  admissionConcurrency: number;

  // ---- Sync inference (issue 5) ----
  predictBatchMaxRows: number;
  predictBatchDelayMs: number;
  predictConcurrency: number;
  predictLookupTtlMs: number;
  workerModelCacheBytes: number;
  workerInferenceChildren: number;

  // ---- Model imports ----
  importCheckTimeoutMs: number;
  importChecksPerTenant: number;
  // ---- GET /metrics ----
  metricsToken: string | null;
  /** Networks whose scrapers need no key (METRICS_ALLOW_FROM). */
  metricsAllowFrom: readonly Cidr[];
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export class ConfigError extends Error {}

function clusterNodes(list: string | undefined): AppConfig['redisClusterNodes'] {
  if (list === undefined) return null;
  return list
    .replace(/^redis-cluster:\/\//, '')
    .replace(/\/$/, '')
    .split(',')
    .map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
    });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: clusterNodes(e.REDIS_CLUSTER_NODES ?? (e.REDIS_URL.startsWith('redis-cluster://') ? e.REDIS_URL : undefined)),
    redisPrefix: e.REDIS_PREFIX,
    adminApiKey: e.ADMIN_API_KEY,
    logLevel: e.LOG_LEVEL,
    keyCacheTtlMs: e.KEY_CACHE_TTL_MS,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    idempotencyTtlHours: e.IDEMPOTENCY_TTL_HOURS,
    bodyIdleTimeoutMs: e.BODY_IDLE_TIMEOUT_MS,
    bodyTimeoutMs: e.BODY_TIMEOUT_MS,
    uploadTimeoutMs: e.UPLOAD_TIMEOUT_MS,
    uploadsPerTenant: e.UPLOADS_PER_TENANT,
    datasetMaxRecordBytes: e.DATASET_MAX_RECORD_BYTES,
    datasetMaxColumns: e.DATASET_MAX_COLUMNS,
    datasetImageMaxBytes: e.DATASET_IMAGE_MAX_BYTES,
    datasetImageMaxPixels: e.DATASET_IMAGE_MAX_PIXELS,
    datasetZipMaxRatio: e.DATASET_ZIP_MAX_RATIO,
    datasetZipMaxInflatedBytes: e.DATASET_ZIP_MAX_INFLATED_BYTES,
    featureCacheMaxBytes: e.FEATURE_CACHE_MAX_BYTES,
    fileRetentionSeconds: e.FILE_RETENTION_SECONDS,
    batchPredictionChunkRows: e.BATCH_PREDICTION_CHUNK_ROWS,
    databaseIdleInTransactionMs: e.DATABASE_IDLE_IN_TRANSACTION_MS,
    idempotencyMaxAnswerBytes: e.IDEMPOTENCY_MAX_ANSWER_BYTES,
    authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE,

    webhookSecretKey: webhookKey(e.NODE_ENV, e.WEBHOOK_SECRET_KEY),
    webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
    webhookRetrySchedule: parseSchedule(e.WEBHOOK_RETRY_SCHEDULE),
    webhookAllowedHosts: parseAllowedHosts(e.WEBHOOK_ALLOWED_HOSTS),
    webhookSecretGraceMs: e.WEBHOOK_SECRET_GRACE_MS,
    webhookConcurrency: e.WEBHOOK_CONCURRENCY,
    workerConcurrency: e.WORKER_CONCURRENCY,
    workerInferenceJobs: e.WORKER_INFERENCE_JOBS,
    workerHeartbeatMs: e.WORKER_HEARTBEAT_MS,
    instanceId: e.INSTANCE_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    tfBackend: e.TF_BACKEND ?? null,
    workerLockDurationMs: e.WORKER_LOCK_DURATION_MS,
    workerStalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    workerMaxStalledCount: e.WORKER_MAX_STALLED_COUNT,
    workerShutdownDeadlineMs: e.WORKER_SHUTDOWN_DEADLINE_MS,
    workerCancelKillMs: e.WORKER_CANCEL_KILL_MS,
    workerReconcileIntervalMs: e.WORKER_RECONCILE_INTERVAL_MS,
    workerReconcileAgeMs: e.WORKER_RECONCILE_AGE_MS,
    jobGpuWaitTimeoutSeconds: e.JOB_GPU_WAIT_TIMEOUT_SECONDS,
    jobOutputPageSize: e.JOB_OUTPUT_PAGE_SIZE,
    workerFakeGpu: e.WORKER_FAKE_GPU === '1' || e.WORKER_FAKE_GPU === 'true',

    admissionWindowMs: e.ADMISSION_WINDOW_MS,
    admissionMaxBatch: e.ADMISSION_MAX_BATCH,
    admissionMaxBatchBytes: e.ADMISSION_MAX_BATCH_BYTES,
    admissionConcurrency: e.ADMISSION_CONCURRENCY,

    predictBatchMaxRows: e.PREDICT_BATCH_MAX_ROWS,
    predictBatchDelayMs: e.PREDICT_BATCH_DELAY_MS,
    predictConcurrency: e.PREDICT_CONCURRENCY,
    predictLookupTtlMs: e.PREDICT_LOOKUP_TTL_MS,
    workerModelCacheBytes: e.WORKER_MODEL_CACHE_BYTES,
    workerInferenceChildren: e.WORKER_INFERENCE_CHILDREN,

    importCheckTimeoutMs: e.IMPORT_CHECK_TIMEOUT_MS,
    importChecksPerTenant: e.IMPORT_CHECKS_PER_TENANT,
    metricsToken: e.METRICS_TOKEN ?? null,
    metricsAllowFrom: parseCidrs(e.METRICS_ALLOW_FROM),
  };
}

/** `10.0.5.0/24, 2001:db8::/48, 192.0.2.7`: a bare address is a single host. */
export function parseCidrs(text: string): Cidr[] {
  const out: Cidr[] = [];
  for (const item of text.split(',')) {
    const entry = item.trim();
    if (entry === '') continue;
    const [address, bits, extra] = entry.split('/');
    const version = isIP(address);
    const max = version === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (version === 0 || extra !== undefined || !(prefix >= 0 && prefix <= max))
      throw new Error(`'${entry}' is not an IP address or CIDR (a.b.c.d/n, x:y::/n)`);
    out.push({ address, prefix, family: version === 6 ? 'ipv6' : 'ipv4' });
  }
  return out;
}

/**
 * The key that encrypts webhook secrets. Production must configure one; elsewhere a fixed
 * development key stands in, so that `npm start` works out of the box (its secrets are then only
 * as safe as the database they sit in).
 */
function webhookKey(env: string, configured: string | undefined): Buffer {
  if (configured) return parseEncryptionKey(configured);
  if (env === 'production')
    throw new ConfigError('invalid environment:\n  WEBHOOK_SECRET_KEY: required in production (32 bytes, hex or base64)');
  return createHash('sha256').update('aiaas development webhook key').digest();
}

/** Nest injection token for AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');
