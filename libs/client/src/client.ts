import createClient, { type Client } from 'openapi-fetch';
import { DatasetsClient } from './datasets.js';
import { AiaasConnectionError, AiaasError, JobWaitTimeoutError } from './errors.js';
import { FilesClient } from './files.js';
import type { components, paths } from './generated/openapi.js';
import { ModelsClient } from './models.js';
import { parseEventStream } from './sse.js';
import { abortableSleep, DEFAULT_RETRY, retryingFetch, type RetryOptions, type TransportOptions } from './transport.js';
import { verifyWebhook } from './webhooks.js';

type Job = components['schemas']['Job'];
type JobEvent = components['schemas']['JobEvent'];

export interface AiaasOptions {
  /** Where the API is, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** A tenant key (`aik_…`) or an admin key (`adm_…`). */
  apiKey?: string;
  /** Retries of 429, 503 and connection failures (defaults: 3 retries from 500 ms, 30 s at most). */
  retry?: Partial<RetryOptions>;
  onRetry?: TransportOptions['onRetry'];
  headers?: Record<string, string>;
  fetch?: (request: Request) => Promise<Response>;
}

/** What an openapi-fetch call resolves to. */
type Answer = { data?: unknown; error?: unknown; response: Response };
type DataOf<R extends Answer> = Exclude<R['data'], undefined>;

const FINISHED = new Set<string>(['succeeded', 'failed', 'canceled']);
const TERMINAL_EVENTS = new Set<string>(['job.succeeded', 'job.failed', 'job.canceled']);

export const isFinished = (job: Pick<Job, 'status'>): boolean => FINISHED.has(job.status);

/**
 * The aiaas API. `api` is a client typed by the OpenAPI document (every route, parameter and
 * body); `call` turns its answer into the data or a thrown AiaasError. `jobs`, `datasets`,
 * `models`, `files` and `webhooks` add what plain requests don't give: waiting, streaming, uploads,
 * image files, downloads of output files, signature checks.
 */
export class Aiaas {
  readonly api: Client<paths>;
  readonly jobs: JobsClient;
  readonly datasets: DatasetsClient;
  readonly models: ModelsClient;
  readonly files: FilesClient;
  readonly webhooks = { verify: verifyWebhook };
  readonly baseUrl: string;
  /** @internal How requests are sent and retried; uploads of streams build their own fetch from it. */
  readonly transport: TransportOptions;

  constructor(opts: AiaasOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.transport = { ...DEFAULT_RETRY, ...opts.retry, fetch: opts.fetch, onRetry: opts.onRetry };
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      fetch: retryingFetch(this.transport),
      headers: { ...opts.headers, ...(opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : {}) },
    });
    this.jobs = new JobsClient(this);
    this.datasets = new DatasetsClient(this);
    this.models = new ModelsClient(this);
    this.files = new FilesClient(this);
  }

  /** Awaits a call of `api` and returns its data; an error answer is thrown as an AiaasError. */
  async call<R extends Answer>(pending: Promise<R>): Promise<DataOf<R>> {
    const { data, error, response } = await pending;
    if (!response.ok || error !== undefined) throw AiaasError.fromAnswer(response, error);
    return data as DataOf<R>;
  }
}

export interface WaitOptions {
  /** Give up (JobWaitTimeoutError) after this long; default: never. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** First poll interval (default 250 ms); it grows by half at each poll, up to maxIntervalMs (2 s). */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Called with the job at each poll. */
  onUpdate?: (job: Job) => void;
}

export class JobsClient {
  constructor(private readonly c: Aiaas) {}

  get(id: string, signal?: AbortSignal): Promise<Job> {
    return this.c.call(this.c.api.GET('/v1/jobs/{id}', { params: { path: { id } }, signal }));
  }

  cancel(id: string): Promise<Job> {
    return this.c.call(this.c.api.POST('/v1/jobs/{id}/cancel', { params: { path: { id } } }));
  }

  /** Polls the job, with a growing interval, until it is succeeded, failed or canceled. */
  async wait(id: string, opts: WaitOptions = {}): Promise<Job> {
    const started = Date.now();
    let interval = opts.intervalMs ?? 250;
    for (;;) {
      const job = await this.get(id, opts.signal);
      opts.onUpdate?.(job);
      if (isFinished(job)) return job;
      if (opts.timeoutMs !== undefined && Date.now() - started + interval > opts.timeoutMs)
        throw new JobWaitTimeoutError(id, opts.timeoutMs);
      await abortableSleep(interval, opts.signal);
      interval = Math.min(opts.maxIntervalMs ?? 2_000, interval * 1.5);
    }
  }

  /**
   * The job's events, oldest first, live until it ends (`GET /v1/jobs/{id}/stream`). A dropped
   * connection is resumed from the last event seen (`Last-Event-ID`), so no event is lost or repeated.
   */
  async *stream(
    id: string,
    opts: { signal?: AbortSignal; lastEventId?: string; maxReconnects?: number } = {},
  ): AsyncGenerator<JobEvent, void, undefined> {
    let lastEventId = opts.lastEventId;
    let failures = 0;
    for (;;) {
      const body = await this.c.call(
        this.c.api.GET('/v1/jobs/{id}/stream', {
          params: { path: { id } },
          parseAs: 'stream',
          headers: lastEventId ? { 'Last-Event-ID': lastEventId } : {},
          signal: opts.signal,
        }),
      );
      let dropped: unknown = new Error('the stream ended before the job did');
      try {
        for await (const sse of parseEventStream(body as ReadableStream<Uint8Array>)) {
          if (sse.id) lastEventId = sse.id;
          failures = 0;
          const event = JSON.parse(sse.data) as JobEvent;
          yield event;
          if (TERMINAL_EVENTS.has(event.type)) return;
        }
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        dropped = err;
      }
      if (++failures > (opts.maxReconnects ?? 5)) throw new AiaasConnectionError(this.c.baseUrl, dropped);
      await abortableSleep(Math.min(5_000, 250 * 2 ** failures), opts.signal);
    }
  }
}
