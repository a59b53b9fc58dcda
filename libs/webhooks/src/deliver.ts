import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkDestination, DestinationRefused, type Destination, type DestinationRefusedCode, type LookupFn } from './destination.js';
import { retryAfterMs } from './schedule.js';

/**
 * One delivery attempt: check the destination again, POST to the address that check approved, and
 * report what happened. It never throws for anything the network or the receiver does; the caller
 * records the result and decides on a retry (see schedule.ts).
 */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Read this much of a response body (then drop it) before calling the attempt done. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
const MAX_LOCATION_CHARS = 2048;

export interface DeliveryRequest {
  url: string;
  /** From headersFor(); `host` and `content-length` are set here. */
  headers: Readonly<Record<string, string>>;
  body: string;
  /** The whole attempt: DNS, connect, response headers and up to MAX_RESPONSE_BYTES of body. */
  timeoutMs?: number;
  allowedHosts: ReadonlySet<string>;
  lookup?: LookupFn;
}

export interface DeliveryResult {
  /** A 2xx arrived (and its body, up to the limit, within the time); exactly when `error` is null. */
  ok: boolean;
  /** The response's status, or null when none arrived. */
  statusCode: number | null;
  /** Why the attempt failed, for the attempt log; null on success. Never contains a secret. */
  error: string | null;
  durationMs: number;
  /** The receiver's `Retry-After` on a failed attempt, in ms (capped), else null. */
  retryAfterMs: number | null;
  /** The `Location` of a 3xx, which is not followed. */
  redirectedTo?: string;
  /** Set when the SSRF guard refused the destination (no connection was made). */
  refused?: DestinationRefusedCode;
}

// Keep-alive agents: deliveries come in bursts to a few endpoints, and a reused connection saves a TCP
// (and TLS) handshake per message. Sockets are pooled by the address we connect to (requests name the
// checked address as `host`), so a reused socket only ever serves a delivery whose fresh check chose
// that same address. Idle sockets close after 4 s, before Node's default 5 s server keep-alive, and
// sooner when the receiver announces `Keep-Alive: timeout=N`, so we rarely write into a closing socket.
const AGENT_OPTIONS: https.AgentOptions = { keepAlive: true, timeout: 4_000, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' };
const httpAgent = new http.Agent(AGENT_OPTIONS);
const httpsAgent = new https.Agent(AGENT_OPTIONS);

/** Closes pooled connections (on shutdown, or between tests); later deliveries open new ones. */
export function closeDeliveryAgents(): void {
  httpAgent.destroy();
  httpsAgent.destroy();
}

class Deadline extends Error {}

export async function deliver(request: DeliveryRequest): Promise<DeliveryResult> {
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = performance.now();
  let destination: Destination;
  try {
    destination = await beforeDeadline(
      checkDestination(request.url, { allowedHosts: request.allowedHosts, lookup: request.lookup }),
      timeoutMs,
    );
  } catch (err) {
    const durationMs = Math.round(performance.now() - started);
    if (err instanceof DestinationRefused) {
      return { ok: false, statusCode: null, error: `${err.code}: ${err.message}`, durationMs, retryAfterMs: null, refused: err.code };
    }
    const error = err instanceof Deadline ? `timed out after ${timeoutMs} ms resolving the host` : `unexpected error: ${String(err)}`;
    return { ok: false, statusCode: null, error, durationMs, retryAfterMs: null };
  }
  return post(destination, request, timeoutMs, started);
}

function post(destination: Destination, request: DeliveryRequest, timeoutMs: number, started: number): Promise<DeliveryResult> {
  const { url, address, family } = destination;
  const secure = url.protocol === 'https:';
  const body = Buffer.from(request.body, 'utf8');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers.host = url.host;
  headers['content-length'] = String(body.length);
  const remaining = Math.max(1, Math.round(timeoutMs - (performance.now() - started)));

  const options: https.RequestOptions = {
    method: 'POST',
    host: address, // connect to the checked address, never to a second lookup of the name
    family,
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    path: url.pathname + url.search,
    headers,
    agent: secure ? httpsAgent : httpAgent,
    // While in use the socket's idle timeout is the attempt's; our own timer below is the real limit.
    timeout: remaining,
  };
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  // SNI and certificate checks use the URL's host name (SNI may not carry an IP literal).
  if (secure && isIP(hostname) === 0) options.servername = hostname;

  return new Promise<DeliveryResult>((resolve) => {
    let phase = 'connecting';
    let statusCode: number | undefined;
    let settled = false;
    const finish = (result: Omit<DeliveryResult, 'durationMs' | 'ok'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok: result.error === null, ...result, durationMs: Math.round(performance.now() - started) });
    };

    const req = (secure ? https : http).request(options);
    const timer = setTimeout(() => {
      finish({ statusCode: statusCode ?? null, error: `timed out after ${timeoutMs} ms ${phase}`, retryAfterMs: null });
      req.destroy();
    }, remaining);

    req.on('socket', (socket) => {
      if (!socket.connecting) phase = 'waiting for the response';
      else socket.once('connect', () => (phase = 'waiting for the response'));
    });
    req.on('timeout', () => {}); // the timer above decides; the socket timeout only mirrors it
    req.on('error', (err) => finish({ statusCode: statusCode ?? null, error: describe(err), retryAfterMs: null }));
    req.on('response', (res) => {
      phase = 'reading the response body';
      statusCode = res.statusCode ?? 0;
      const code = statusCode;
      const outcome = ((): Omit<DeliveryResult, 'durationMs' | 'ok'> => {
        if (code >= 200 && code < 300) return { statusCode: code, error: null, retryAfterMs: null };
        const retryAfter = retryAfterMs(res.headers['retry-after']);
        if (code >= 300 && code < 400) {
          const location = res.headers.location?.slice(0, MAX_LOCATION_CHARS);
          return location === undefined
            ? { statusCode: code, error: `redirect (${code}) not followed`, retryAfterMs: retryAfter }
            : {
                statusCode: code,
                error: `redirect (${code}) to ${location} not followed`,
                retryAfterMs: retryAfter,
                redirectedTo: location,
              };
        }
        return { statusCode: code, error: `receiver answered ${code}`, retryAfterMs: retryAfter };
      })();
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_RESPONSE_BYTES) {
          finish(outcome);
          res.destroy(); // enough: the rest is not read, and the socket is not reused
        }
      });
      res.on('end', () => finish(outcome));
      res.on('error', (err) => finish({ ...outcome, error: `response cut short: ${describe(err)}` }));
    });
    req.end(body);
  });
}

function describe(err: Error & { code?: string }): string {
  if (err.code === 'ECONNREFUSED') return `connection refused (${err.message})`;
  if (err.code === 'ECONNRESET') return `connection reset by the receiver (${err.message})`;
  return err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
}

function beforeDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deadline()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
