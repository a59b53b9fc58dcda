import { afterEach, describe, expect, it } from '@jest/globals';
import { headersFor, newSecret } from '@app/webhooks';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Aiaas, AiaasConnectionError, AiaasError, retryAfterMs, WebhookVerificationError } from './index.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A local API stand-in: `answer` is called with each request and how many came before it. */
async function fakeApi(answer: (req: Seen, res: ServerResponse, n: number) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(r);
      answer(r, res, seen.length - 1);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${status}`, ...headers }).end(JSON.stringify(body));
const rateLimited = { error: { type: 'rate_limit_error', code: 'requests_per_minute', message: 'Too many requests' } };
const unavailable = { error: { type: 'api_error', code: 'dependency_unavailable', message: 'PostgreSQL does not answer' } };
const model = { id: 'mdl_1', object: 'model', name: 'churn', task: 'classification' };

const clientOf = (url: string) => new Aiaas({ baseUrl: url, apiKey: 'aik_test', retry: { initialDelayMs: 1 } });

describe('retries', () => {
  it('waits for Retry-After on a 429 and sends the POST again with the same Idempotency-Key and body', async () => {
    const api = await fakeApi((_req, res, n) => (n === 0 ? json(res, 429, rateLimited, { 'retry-after': '0' }) : json(res, 201, model)));
    const client = clientOf(api.url);
    const created = await client.call(client.api.POST('/v1/models', { body: { name: 'churn', task: 'classification' } }));
    expect(created).toMatchObject({ id: 'mdl_1' });
    expect(api.seen).toHaveLength(2);
    const [first, second] = api.seen;
    expect(first.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.headers['idempotency-key']).toBe(first.headers['idempotency-key']);
    expect(JSON.parse(second.body)).toEqual({ name: 'churn', task: 'classification' });
    expect(second.headers.authorization).toBe('Bearer aik_test');
  });

  it('backs off exponentially on 503 and, out of retries, throws the last answer as an AiaasError', async () => {
    const api = await fakeApi((_req, res) => json(res, 503, unavailable));
    const delays: number[] = [];
    const client = new Aiaas({
      baseUrl: api.url,
      apiKey: 'aik_test',
      retry: { maxRetries: 3, initialDelayMs: 1 },
      onRetry: ({ delayMs }) => delays.push(delayMs),
    });
    const err = await client.call(client.api.GET('/v1/me', {})).catch((e: unknown) => e);
    expect(api.seen).toHaveLength(4);
    expect(delays).toHaveLength(3);
    // 1, 2, 4 ms, each within ±25 %
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0.75 * 2 ** i);
      expect(d).toBeLessThanOrEqual(1.25 * 2 ** i);
    });
    expect(err).toBeInstanceOf(AiaasError);
    expect((err as AiaasError).toJSON()).toEqual({
      status: 503,
      type: 'api_error',
      code: 'dependency_unavailable',
      message: 'PostgreSQL does not answer',
      request_id: 'req_503',
    });
  });

  it('does not wait for a Retry-After longer than its longest delay', async () => {
    const api = await fakeApi((_req, res) => json(res, 429, rateLimited, { 'retry-after': '120' }));
    const client = new Aiaas({ baseUrl: api.url, apiKey: 'aik_test', retry: { maxDelayMs: 5_000 } });
    const err = (await client.call(client.api.GET('/v1/me', {})).catch((e: unknown) => e)) as AiaasError;
    expect(api.seen).toHaveLength(1);
    expect([err.status, err.type, err.code, err.retryAfterSeconds, err.requestId]).toEqual([
      429,
      'rate_limit_error',
      'requests_per_minute',
      120,
      'req_429',
    ]);
  });

  it('never retries other errors, and types them from the body and Request-Id', async () => {
    const api = await fakeApi((_req, res) =>
      json(res, 404, { error: { type: 'invalid_request_error', code: 'resource_missing', message: "No such model: 'x'", param: 'id' } }),
    );
    const client = new Aiaas({ baseUrl: api.url, apiKey: 'aik_test' });
    const err = (await client
      .call(client.api.GET('/v1/models/{id}', { params: { path: { id: 'x' } } }))
      .catch((e: unknown) => e)) as AiaasError;
    expect(api.seen).toHaveLength(1);
    expect(err).toBeInstanceOf(AiaasError);
    expect([err.status, err.type, err.code, err.message, err.param, err.request_id]).toEqual([
      404,
      'invalid_request_error',
      'resource_missing',
      "No such model: 'x'",
      'id',
      'req_404',
    ]);
  });

  it('does not retry a replayed answer, and keeps an Idempotency-Key the caller gave', async () => {
    const api = await fakeApi((_req, res) =>
      json(
        res,
        429,
        { error: { type: 'quota_exceeded_error', code: 'max_queued_jobs', message: 'Too many queued jobs' } },
        { 'retry-after': '0', 'idempotent-replayed': 'true' },
      ),
    );
    const client = new Aiaas({ baseUrl: api.url, apiKey: 'aik_test' });
    const err = (await client
      .call(
        client.api.POST('/v1/jobs', { body: { type: 'evaluation', model: 'm', dataset: 'ds_1' }, headers: { 'Idempotency-Key': 'mine' } }),
      )
      .catch((e: unknown) => e)) as AiaasError;
    expect(api.seen).toHaveLength(1);
    expect(api.seen[0].headers['idempotency-key']).toBe('mine');
    expect(err.code).toBe('max_queued_jobs');
  });

  it('sends no Idempotency-Key on a GET', async () => {
    const api = await fakeApi((_req, res) => json(res, 200, { object: 'list', data: [], has_more: false }));
    const client = new Aiaas({ baseUrl: api.url, apiKey: 'aik_test' });
    await client.call(client.api.GET('/v1/models', {}));
    expect(api.seen[0].headers['idempotency-key']).toBeUndefined();
  });

  it('retries a refused connection, then throws an AiaasConnectionError', async () => {
    const api = await fakeApi(() => undefined);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const client = new Aiaas({ baseUrl: api.url, apiKey: 'aik_test', retry: { maxRetries: 2, initialDelayMs: 1 } });
    const err = (await client.call(client.api.GET('/v1/me', {})).catch((e: unknown) => e)) as AiaasError;
    expect(err).toBeInstanceOf(AiaasConnectionError);
    expect([err.status, err.type, err.code, err.requestId]).toEqual([0, 'connection_error', 'econnrefused', null]);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3_000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs(null)).toBeNull();
    expect(retryAfterMs('soon')).toBeNull();
  });
});

describe('jobs.stream', () => {
  const sse = (seq: number, type: string, data: object = {}) =>
    `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ id: `evt_${seq}`, object: 'job_event', job_id: 'job_1', type, data, created_at: '2026-11-28T00:00:00.000Z' })}\n\n`;

  it('yields events in order and resumes a dropped stream from Last-Event-ID', async () => {
    const api = await fakeApi((req, res, n) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 0) {
        res.write(`${sse(1, 'job.queued')}: keep-alive\n\n${sse(2, 'job.started')}`);
        setTimeout(() => res.destroy(), 20); // the connection drops mid-job
      } else {
        expect(req.headers['last-event-id']).toBe('2');
        res.end(sse(3, 'job.progress', { epoch: 1, epochs: 1, loss: 0.5 }) + sse(4, 'job.succeeded'));
      }
    });
    const client = new Aiaas({ baseUrl: api.url, apiKey: 'aik_test' });
    const types: string[] = [];
    for await (const e of client.jobs.stream('job_1')) types.push(e.type);
    expect(types).toEqual(['job.queued', 'job.started', 'job.progress', 'job.succeeded']);
    expect(api.seen.map((s) => s.url)).toEqual(['/v1/jobs/job_1/stream', '/v1/jobs/job_1/stream']);
  });
});

describe('webhooks.verify', () => {
  it('returns the event of a correctly signed delivery and refuses a tampered one', () => {
    const secret = newSecret();
    const body = JSON.stringify({ type: 'job.succeeded', timestamp: '2026-11-28T00:00:00.000Z', data: { id: 'job_1' } });
    const headers = headersFor({ id: 'msg_1', timestamp: Math.floor(Date.now() / 1000), body, secrets: [secret] });
    const client = new Aiaas({ baseUrl: 'http://127.0.0.1:1' });
    expect(client.webhooks.verify(body, headers, secret)).toEqual({
      type: 'job.succeeded',
      timestamp: '2026-11-28T00:00:00.000Z',
      data: { id: 'job_1' },
    });
    expect(client.webhooks.verify(Buffer.from(body), new Headers(headers), secret).data).toEqual({ id: 'job_1' });
    expect(() => client.webhooks.verify(body.replace('job_1', 'job_2'), headers, secret)).toThrow(WebhookVerificationError);
  });
});

describe('files', () => {
  const ndjson = { 'content-type': 'application/x-ndjson; charset=utf-8' };
  const file = { object: 'file', id: 'file_1', purpose: 'batch_output', filename: 'job_1.ndjson', bytes: 74, rows: 2 };

  async function readAll(body: ReadableStream<Uint8Array>): Promise<string> {
    let text = '';
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
    return text;
  }

  it('streams an NDJSON file as it arrives, without parsing it as JSON or waiting for the end', async () => {
    const lines = ['{"row":0,"prediction":{"label":"a"}}\n', '{"row":1,"prediction":{"label":"b"}}\n'];
    let finish: (() => void) | undefined;
    const api = await fakeApi((_req, res) => {
      res.writeHead(200, { ...ndjson, 'content-length': String(lines.join('').length) });
      res.write(lines[0]);
      finish = () => res.end(lines[1]);
    });
    const reader = (await clientOf(api.url).files.download('file_1')).getReader();
    let first = '';
    while (first.length < lines[0].length) first += Buffer.from((await reader.read()).value!).toString();
    // The answer is still open: the first line was read before the second was sent.
    expect(first).toBe(lines[0]);
    finish!();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe(lines[1]);
    expect(api.seen[0]).toMatchObject({ method: 'GET', url: '/v1/files/file_1/content' });
    expect(api.seen[0].headers.range).toBeUndefined();
  });

  it('asks for one byte range and gives the 206 body; refuses a bad range before sending anything', async () => {
    const api = await fakeApi((_req, res) =>
      res.writeHead(206, { ...ndjson, 'content-range': 'bytes 5-9/22', 'content-length': '5' }).end(':0,"p'),
    );
    const client = clientOf(api.url);
    expect(await readAll(await client.files.download('file_1', { range: { start: 5, end: 9 } }))).toBe(':0,"p');
    await client.files.download('file_1', { range: { start: 5 } }).then(readAll);
    expect(api.seen.map((s) => s.headers.range)).toEqual(['bytes=5-9', 'bytes=5-']);
    await expect(client.files.download('file_1', { range: { start: 9, end: 5 } })).rejects.toThrow(RangeError);
    await expect(client.files.download('file_1', { range: { start: -1 } })).rejects.toThrow(RangeError);
    expect(api.seen).toHaveLength(2);
  });

  it('refuses a whole file answered to a range request, which would corrupt a resumed download', async () => {
    const api = await fakeApi((_req, res) => res.writeHead(200, { ...ndjson, 'content-length': '22' }).end('{"row":0,"p":"a"}\n{"r"'));
    const err = await clientOf(api.url)
      .files.download('file_1', { range: { start: 18 } })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/answered 200, not 206/);
  });

  it('throws an error answer (404, 416) as an AiaasError, and gives an empty file as an empty stream', async () => {
    const api = await fakeApi((req, res, n) => {
      if (n === 0)
        json(res, 404, {
          error: { type: 'invalid_request_error', code: 'resource_missing', message: "No such file: 'file_x'", param: 'id' },
        });
      else if (n === 1)
        json(
          res,
          416,
          { error: { type: 'invalid_request_error', code: 'range_not_satisfiable', message: "The range is outside the file's 22 bytes" } },
          { 'content-range': 'bytes */22' },
        );
      else res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-length': '0' }).end();
      expect(req.method).toBe('GET');
    });
    const client = clientOf(api.url);
    const missing = (await client.files.download('file_x').catch((e: unknown) => e)) as AiaasError;
    expect(missing).toBeInstanceOf(AiaasError);
    expect([missing.status, missing.code, missing.requestId]).toEqual([404, 'resource_missing', 'req_404']);
    const past = (await client.files.download('file_1', { range: { start: 22 } }).catch((e: unknown) => e)) as AiaasError;
    expect([past.status, past.code]).toEqual([416, 'range_not_satisfiable']);
    expect(await readAll(await client.files.download('file_1'))).toBe('');
  });

  it('lists, gets and deletes files by their routes', async () => {
    const api = await fakeApi((req, res) => {
      if (req.method === 'DELETE') json(res, 200, { id: 'file_1', object: 'file', deleted: true });
      else if (req.url.startsWith('/v1/files?')) json(res, 200, { object: 'list', data: [file], has_more: false });
      else json(res, 200, file);
    });
    const client = clientOf(api.url);
    expect((await client.files.list({ limit: 5, starting_after: 'file_0' })).data).toEqual([file]);
    expect(await client.files.get('file_1')).toEqual(file);
    expect(await client.files.delete('file_1')).toEqual({ id: 'file_1', object: 'file', deleted: true });
    expect(api.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /v1/files?limit=5&starting_after=file_0',
      'GET /v1/files/file_1',
      'DELETE /v1/files/file_1',
    ]);
  });
});
