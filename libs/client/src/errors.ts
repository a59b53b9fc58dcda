import type { components } from './generated/openapi.js';

export type ApiErrorType = components['schemas']['Error']['error']['type'];

/**
 * An error answer of the API, as a typed object: `status`, and the body's `type`, `code`,
 * `message` and `param`, with the `Request-Id` of the answer (quote it when reporting a problem).
 */
export class AiaasError extends Error {
  override readonly name: string = 'AiaasError';
  readonly status: number;
  readonly type: ApiErrorType | 'connection_error';
  readonly code: string;
  readonly param?: string;
  readonly requestId: string | null;
  /** From `Retry-After`, when the API sent one (429, 503). */
  readonly retryAfterSeconds?: number;

  constructor(init: {
    status: number;
    type: AiaasError['type'];
    code: string;
    message: string;
    param?: string;
    requestId?: string | null;
    retryAfterSeconds?: number;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.type = init.type;
    this.code = init.code;
    if (init.param !== undefined) this.param = init.param;
    this.requestId = init.requestId ?? null;
    if (init.retryAfterSeconds !== undefined) this.retryAfterSeconds = init.retryAfterSeconds;
  }

  /** The request id as the API spells it. */
  get request_id(): string | null {
    return this.requestId;
  }

  /** An error answer: its parsed body (openapi-fetch has read it) and its response. */
  static fromAnswer(response: Response, body: unknown): AiaasError {
    const requestId = response.headers.get('request-id');
    const retryAfter = Number(response.headers.get('retry-after'));
    const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined;
    const error = (body as { error?: Partial<components['schemas']['Error']['error']> } | undefined)?.error;
    if (error && typeof error.type === 'string' && typeof error.code === 'string' && typeof error.message === 'string') {
      return new AiaasError({
        status: response.status,
        type: error.type,
        code: error.code,
        message: error.message,
        param: error.param,
        requestId,
        retryAfterSeconds,
      });
    }
    // Not the API's shape (a proxy's page, say): keep what can be said.
    const text = typeof body === 'string' && body.trim() ? `: ${body.trim().slice(0, 200)}` : '';
    return new AiaasError({
      status: response.status,
      type: response.status >= 500 ? 'api_error' : 'invalid_request_error',
      code: `http_${response.status}`,
      message: `HTTP ${response.status} ${response.statusText}${text}`,
      requestId,
      retryAfterSeconds,
    });
  }

  toJSON() {
    return {
      status: this.status,
      type: this.type,
      code: this.code,
      message: this.message,
      ...(this.param !== undefined ? { param: this.param } : {}),
      request_id: this.requestId,
    };
  }
}

/** The API could not be reached (refused, reset, DNS), after the retries. */
export class AiaasConnectionError extends AiaasError {
  override readonly name = 'AiaasConnectionError';

  constructor(url: string, cause: unknown) {
    const reason = connectionReason(cause);
    super({ status: 0, type: 'connection_error', code: reason.code, message: `Could not reach ${url}: ${reason.message}`, cause });
  }
}

/** `jobs.wait` gave up before the job ended. */
export class JobWaitTimeoutError extends Error {
  override readonly name = 'JobWaitTimeoutError';
  constructor(
    readonly jobId: string,
    readonly timeoutMs: number,
  ) {
    super(`Job ${jobId} had not ended after ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** A job the helper needed to succeed (an inference behind `models.predictImages`) failed or was canceled. */
export class JobFailedError extends Error {
  override readonly name = 'JobFailedError';
  constructor(readonly job: components['schemas']['Job']) {
    super(`${job.id} ${job.status}${job.error ? `: ${job.error.message} (${job.error.code})` : ''}`);
  }
}

function connectionReason(err: unknown): { code: string; message: string } {
  // fetch wraps the socket error: TypeError('fetch failed', { cause: Error & { code } }).
  let e: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const { code, message: m } = e as { code?: unknown; message?: unknown };
    if (typeof m === 'string' && m) message = m;
    if (typeof code === 'string') return { code: code.toLowerCase(), message };
    e = (e as { cause?: unknown }).cause;
  }
  return { code: 'connection_failed', message };
}
