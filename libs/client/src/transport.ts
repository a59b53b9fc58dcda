import { randomUUID } from 'node:crypto';
import { AiaasConnectionError } from './errors.js';

export interface RetryOptions {
  /** Attempts after the first one (default 3). */
  maxRetries: number;
  /** The first backoff; it doubles at each retry, with ±25 % jitter (default 500 ms). */
  initialDelayMs: number;
  /** The longest single wait; a `Retry-After` longer than this is not waited for (default 30 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxRetries: 3, initialDelayMs: 500, maxDelayMs: 30_000 };

/** Answers worth trying again: rate limited, or a dependency of the API briefly down. */
const RETRY_STATUSES = new Set([429, 503]);

export interface TransportOptions extends RetryOptions {
  fetch?: (request: Request) => Promise<Response>;
  /** Injected by tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Told before each retry (the CLI says so on stderr when verbose). */
  onRetry?: (info: { attempt: number; delayMs: number; status?: number; error?: unknown; request: Request }) => void;
}

/**
 * A fetch that retries 429 and 503 answers (after `Retry-After` when given, else exponential
 * backoff with jitter) and connection failures. Every POST carries an `Idempotency-Key` (one is
 * made when the caller gave none), the same on each attempt, so a retried POST never runs twice.
 */
export function retryingFetch(opts: TransportOptions): (request: Request) => Promise<Response> {
  // A body can be read once: every attempt but the last sends a copy.
  return (original) =>
    sendWithRetries(opts, withIdempotencyKey(original), opts.maxRetries, (request, last) => (last ? request : request.clone()));
}

/**
 * The same for a request whose body is a stream read once (an upload that never sits whole in
 * memory, which a copy for a retry would make it do): a retry sends a fresh body from `reopen`,
 * with the same Idempotency-Key; without `reopen` the request is not retried.
 */
export function streamingFetch(opts: TransportOptions, reopen?: () => ReadableStream<Uint8Array>): (request: Request) => Promise<Response> {
  return (original) =>
    sendWithRetries(opts, withIdempotencyKey(original), reopen ? opts.maxRetries : 0, (request, _last, attempt) =>
      attempt === 0
        ? request
        : new Request(request.url, {
            method: request.method,
            headers: request.headers,
            body: reopen!(),
            signal: request.signal,
            redirect: request.redirect,
            duplex: 'half',
          } as RequestInit),
    );
}

function withIdempotencyKey(request: Request): Request {
  if (request.method !== 'POST' || request.headers.has('idempotency-key')) return request;
  const headers = new Headers(request.headers);
  headers.set('Idempotency-Key', randomUUID());
  return new Request(request, { headers });
}

async function sendWithRetries(
  opts: TransportOptions,
  request: Request,
  maxRetries: number,
  attemptOf: (request: Request, last: boolean, attempt: number) => Request,
): Promise<Response> {
  const send = opts.fetch ?? ((r: Request) => fetch(r));
  const sleep = opts.sleep ?? abortableSleep;
  const random = opts.random ?? Math.random;
  const backoff = (attempt: number) => Math.min(opts.maxDelayMs, opts.initialDelayMs * 2 ** attempt) * (0.75 + random() * 0.5);
  for (let attempt = 0; ; attempt++) {
    const last = attempt >= maxRetries;
    const sent = attemptOf(request, last, attempt);
    let response: Response;
    try {
      response = await send(sent);
    } catch (err) {
      if (request.signal.aborted) throw err;
      if (last) throw new AiaasConnectionError(new URL(request.url).origin, err);
      const delayMs = backoff(attempt);
      opts.onRetry?.({ attempt: attempt + 1, delayMs, error: err, request });
      await sleep(delayMs, request.signal);
      continue;
    }
    // A replayed answer (same Idempotency-Key) will not change however often it is asked for.
    if (last || !RETRY_STATUSES.has(response.status) || response.headers.get('idempotent-replayed') === 'true') return response;
    const delayMs = retryAfterMs(response.headers.get('retry-after')) ?? backoff(attempt);
    if (delayMs > opts.maxDelayMs) return response;
    await response.body?.cancel().catch(() => undefined);
    opts.onRetry?.({ attempt: attempt + 1, delayMs, status: response.status, request });
    await sleep(delayMs, request.signal);
  }
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
