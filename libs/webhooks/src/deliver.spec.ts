import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { closeDeliveryAgents, deliver } from './deliver.js';
import { checkDestination, parseAllowedHosts, type LookupFn } from './destination.js';
import { newSecret } from './secrets.js';
import { headersFor } from './signature.js';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  port: number;
  received: Received[];
  connections: number;
  close(): Promise<void>;
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((close) => close()));
});
afterAll(() => closeDeliveryAgents());

/** A receiver on loopback that records each request, then lets `respond` answer it. */
async function receiver(respond: (req: http.IncomingMessage, res: http.ServerResponse) => void, host = '127.0.0.1'): Promise<Receiver> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      respond(req, res);
    });
  });
  server.on('connection', () => r.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const r: Receiver = {
    port: (server.address() as net.AddressInfo).port,
    received: [],
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(r.close);
  return r;
}

const loopback = parseAllowedHosts('127.0.0.1');
const body = JSON.stringify({ type: 'job.succeeded', timestamp: new Date().toISOString(), data: { id: 'job_1', name: 'ünïcode' } });

function signed(secret = newSecret()) {
  return headersFor({ id: 'msg_1', timestamp: Math.floor(Date.now() / 1000), body, secrets: [secret] });
}

describe('deliver', () => {
  it('POSTs the exact body and signed headers, and calls a 2xx a success', async () => {
    const r = await receiver((_, res) => res.writeHead(204).end());
    const secret = newSecret();
    const headers = { ...signed(secret), Host: 'evil.example', 'Content-Length': '1' };
    const result = await deliver({
      url: `http://127.0.0.1:${r.port}/hooks/in?tenant=a`,
      headers,
      body,
      timeoutMs: 2000,
      allowedHosts: loopback,
    });

    expect(result).toEqual({ ok: true, statusCode: 204, error: null, retryAfterMs: null, durationMs: expect.any(Number) });
    expect(r.received).toHaveLength(1);
    const [got] = r.received;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/hooks/in?tenant=a');
    expect(got.body).toBe(body);
    expect(got.headers).toMatchObject({
      host: `127.0.0.1:${r.port}`,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'aiaas-webhooks/1',
      'webhook-id': 'msg_1',
      'webhook-timestamp': headers['webhook-timestamp'],
      'webhook-signature': headers['webhook-signature'],
    });
    expect(new Webhook(secret).verify(got.body, got.headers as Record<string, string>)).toEqual(JSON.parse(body));
  });

  it('does not follow a redirect, and names its Location', async () => {
    const r = await receiver((_, res) => res.writeHead(302, { Location: `http://127.0.0.1:${r.port}/elsewhere` }).end());
    const result = await deliver({
      url: `http://127.0.0.1:${r.port}/hook`,
      headers: signed(),
      body,
      timeoutMs: 2000,
      allowedHosts: loopback,
    });
    expect(result).toMatchObject({ ok: false, statusCode: 302, redirectedTo: `http://127.0.0.1:${r.port}/elsewhere` });
    expect(result.error).toBe(`redirect (302) to http://127.0.0.1:${r.port}/elsewhere not followed`);
    expect(r.received.map((x) => x.url)).toEqual(['/hook']);
  });

  it('times out a receiver that never answers, within timeoutMs', async () => {
    const r = await receiver(() => {});
    const started = Date.now();
    const result = await deliver({
      url: `http://127.0.0.1:${r.port}/slow`,
      headers: signed(),
      body,
      timeoutMs: 300,
      allowedHosts: loopback,
    });
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ ok: false, statusCode: null, error: 'timed out after 300 ms waiting for the response' });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(800);
    expect(result.durationMs).toBeGreaterThanOrEqual(290);
  });

  it('counts reading the response body in the time limit', async () => {
    const r = await receiver((_, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    const result = await deliver({ url: `http://127.0.0.1:${r.port}/`, headers: signed(), body, timeoutMs: 300, allowedHosts: loopback });
    expect(result).toMatchObject({ ok: false, statusCode: 200, error: 'timed out after 300 ms reading the response body' });
  });

  it('reads at most 64 KiB of a large response and calls it by its status', async () => {
    const r = await receiver((_, res) => {
      res.writeHead(200);
      res.end(Buffer.alloc(4 * 1024 * 1024, 'x'));
    });
    const result = await deliver({ url: `http://127.0.0.1:${r.port}/`, headers: signed(), body, timeoutMs: 2000, allowedHosts: loopback });
    expect(result).toMatchObject({ ok: true, statusCode: 200, error: null });
  });

  it('reports 429 with Retry-After in ms, 410, and a 5xx', async () => {
    const answers = [
      [429, { 'Retry-After': '3' }],
      [410, {}],
      [503, { 'Retry-After': 'garbage' }],
    ] as const;
    const r = await receiver((_, res) => {
      const [status, headers] = answers[r.received.length - 1];
      res.writeHead(status, headers).end('{"error":"nope"}');
    });
    const attempt = () => deliver({ url: `http://127.0.0.1:${r.port}/`, headers: signed(), body, timeoutMs: 2000, allowedHosts: loopback });
    expect(await attempt()).toMatchObject({ ok: false, statusCode: 429, retryAfterMs: 3000, error: 'receiver answered 429' });
    expect(await attempt()).toMatchObject({ ok: false, statusCode: 410, retryAfterMs: null, error: 'receiver answered 410' });
    expect(await attempt()).toMatchObject({ ok: false, statusCode: 503, retryAfterMs: null });
  });

  it('refuses a destination that is not allowed without connecting to it', async () => {
    const r = await receiver((_, res) => res.writeHead(200).end());
    const result = await deliver({ url: `http://127.0.0.1:${r.port}/`, headers: signed(), body, timeoutMs: 2000, allowedHosts: new Set() });
    expect(result).toMatchObject({ ok: false, statusCode: null, refused: 'address_not_allowed', retryAfterMs: null });
    expect(result.error).toBe('address_not_allowed: host 127.0.0.1 is a loopback address (127.0.0.0/8)');
    expect(r.connections).toBe(0);
    expect(await deliver({ url: 'ftp://x', headers: signed(), body, timeoutMs: 2000, allowedHosts: loopback })).toMatchObject({
      refused: 'scheme_not_allowed',
    });
    expect(await deliver({ url: '::nonsense', headers: signed(), body, timeoutMs: 2000, allowedHosts: loopback })).toMatchObject({
      refused: 'url_invalid',
    });
  });

  it('reports a refused connection and a DNS failure as errors, never throwing', async () => {
    const r = await receiver(() => {});
    const port = r.port;
    await r.close();
    const refused = await deliver({ url: `http://127.0.0.1:${port}/`, headers: signed(), body, timeoutMs: 2000, allowedHosts: loopback });
    expect(refused).toMatchObject({ ok: false, statusCode: null });
    expect(refused.error).toMatch(/^connection refused \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/);

    const lookup: LookupFn = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    const dns = await deliver({ url: 'https://gone.example/', headers: signed(), body, timeoutMs: 2000, allowedHosts: loopback, lookup });
    expect(dns).toMatchObject({ refused: 'dns_failed', error: 'dns_failed: host gone.example does not resolve (ENOTFOUND)' });

    const hanging: LookupFn = () => new Promise(() => {});
    const slow = await deliver({
      url: 'https://slow-dns.example/',
      headers: signed(),
      body,
      timeoutMs: 200,
      allowedHosts: loopback,
      lookup: hanging,
    });
    expect(slow).toMatchObject({ ok: false, error: 'timed out after 200 ms resolving the host' });
  });

  it('connects to the address it checked, not to a second resolution of the name (DNS rebinding)', async () => {
    // Only 127.0.0.2 listens on this port; the system would resolve `localhost` to 127.0.0.1 or ::1.
    const r = await receiver((_, res) => res.writeHead(200).end(), '127.0.0.2');
    const answers = ['127.0.0.2', '10.255.255.1'];
    const lookup = jest.fn<LookupFn>(async () => [{ address: answers.shift()!, family: 4 }]);
    const result = await deliver({
      url: `http://localhost:${r.port}/hook`,
      headers: signed(),
      body,
      timeoutMs: 2000,
      allowedHosts: parseAllowedHosts('localhost'),
      lookup,
    });
    expect(result).toMatchObject({ ok: true, statusCode: 200 });
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(r.received[0].headers.host).toBe(`localhost:${r.port}`);
  });

  it('checks again at each delivery: a name that now resolves to a private address is refused', async () => {
    const answers = ['93.184.215.14', '10.0.0.1'];
    const lookup = jest.fn<LookupFn>(async () => [{ address: answers.shift()! }]);
    const url = 'https://rebind.example/hook';
    // At registration the name resolved to a public address...
    await expect(checkDestination(url, { allowedHosts: new Set(), lookup })).resolves.toMatchObject({ address: '93.184.215.14' });
    // ...and by the time of the delivery to a private one.
    const result = await deliver({ url, headers: signed(), body, timeoutMs: 2000, allowedHosts: new Set(), lookup });
    expect(result).toMatchObject({ ok: false, statusCode: null, refused: 'address_not_allowed' });
    expect(result.error).toBe('address_not_allowed: host rebind.example resolves to 10.0.0.1, a private address (10.0.0.0/8)');
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('sends the URL host as TLS server name while connecting to the checked address', async () => {
    let hello: Buffer = Buffer.alloc(0);
    const server = net.createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        hello = chunk;
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    open.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as net.AddressInfo;
    const result = await deliver({
      url: `https://hooks.receiver.test:${port}/`,
      headers: signed(),
      body,
      timeoutMs: 2000,
      allowedHosts: parseAllowedHosts('hooks.receiver.test'),
      lookup: async () => [{ address: '127.0.0.1', family: 4 }],
    });
    expect(result).toMatchObject({ ok: false, statusCode: null });
    expect(result.error).toMatch(/socket|ECONNRESET|reset/i);
    expect(hello[0]).toBe(0x16); // a TLS handshake record
    expect(hello.includes(Buffer.from('hooks.receiver.test'))).toBe(true);
  });

  it('reuses a kept-alive connection for consecutive deliveries to the same address', async () => {
    const r = await receiver((_, res) => res.writeHead(200).end('ok'));
    for (let i = 0; i < 3; i++) {
      const result = await deliver({
        url: `http://127.0.0.1:${r.port}/`,
        headers: signed(),
        body,
        timeoutMs: 2000,
        allowedHosts: loopback,
      });
      expect(result.ok).toBe(true);
    }
    expect(r.received).toHaveLength(3);
    expect(r.connections).toBe(1);
  });
});
