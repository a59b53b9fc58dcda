import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { adminKey, createTenant, type TenantFixture } from '../support/factories.js';
import { Api } from '../support/http.js';
import { blobs } from '../support/ml-fixtures.js';
import { metricFamilies } from '../support/prometheus.js';
import { type RunningApi, startApi } from '../support/processes.js';

// A hostile tenant aims the service at its own network (webhooks), reads the operator's figures
// (/metrics), and sends broken HTTP to see what answers. Real API over HTTP and raw sockets.
// Only *registers* non-loopback URLs: nothing here sends traffic outside 127.0.0.0/8.

const METRICS_TOKEN = `mt_${randomBytes(16).toString('hex')}`;
let server: RunningApi;
let t: TenantFixture;

beforeAll(async () => {
  // The allow-list keeps working for loopback receivers; nothing refused below is in it.
  server = await startApi({ METRICS_TOKEN, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  t = await createTenant(server.url);
});

afterAll(async () => {
  await server?.stop();
});

/** This machine's first non-loopback IPv4 interface address, as the API's own host sees it (same machine). */
function ownIPv4(): { name: string; address: string } | null {
  for (const [name, entries] of Object.entries(networkInterfaces())) {
    const e = (entries ?? []).find((x) => x.family === 'IPv4' && !x.internal);
    if (e) return { name, address: e.address };
  }
  return null;
}

/** The default IPv4 gateway from /proc/net/route (Linux), or null. */
function defaultGateway(): string | null {
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const [, destination, gateway, flags] = line.trim().split(/\s+/);
      if (destination !== '00000000' || (parseInt(flags, 16) & 2) === 0) continue;
      const n = parseInt(gateway, 16);
      return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
    }
  } catch {
    // not Linux
  }
  return null;
}

const DOCUMENTATION_AND_RESERVED: Array<[string, RegExp]> = [
  ['http://198.51.100.20:3950/', /198\.51\.100\.20 is a documentation address \(TEST-NET-2\) \(198\.51\.100\.0\/24\)/],
  ['http://203.0.113.20/hook', /203\.0\.113\.20 is a documentation address \(TEST-NET-3\) \(203\.0\.113\.0\/24\)/],
  ['http://192.88.99.1/', /192\.88\.99\.1 is a deprecated 6to4 relay anycast address \(192\.88\.99\.0\/24\)/],
  ['http://[2001:db8::1]/', /2001:db8::1 is a documentation address \(2001:db8::\/32\)/],
  ['http://[::ffff:198.51.100.20]/', /IPv4-mapped address \(::ffff:0:0\/96\) of 198\.51\.100\.20, a documentation address/],
  ['http://[3fff::1]/', /a documentation address \(3fff::\/20\)/],
  ['http://[2001:2::1]/', /a benchmarking address \(2001:2::\/48\)/],
  ['http://240.0.0.1/', /a reserved address \(240\.0\.0\.0\/4\)/],
];

describe('webhook destinations: the host itself and the non-public ranges', () => {
  it("refuses an endpoint at this host's own interface address, also as ::ffff:, naming why", async () => {
    const own = ownIPv4();
    if (!own) {
      console.log('skipped: this machine has no non-loopback IPv4 interface address to register');
      return;
    }
    const plain = await t.api.post('/v1/webhooks', { url: `http://${own.address}:3950/` });
    expect([plain.status, plain.body.error?.code, plain.body.error?.param]).toEqual([400, 'url_not_allowed', 'url']);
    expect(plain.body.error.message).toContain(`host ${own.address} is an address of this host (interface ${own.name})`);

    const mapped = await t.api.post('/v1/webhooks', { url: `http://[::ffff:${own.address}]:3950/` });
    expect([mapped.status, mapped.body.error?.code]).toEqual([400, 'url_not_allowed']);
    expect(mapped.body.error.message).toMatch(
      new RegExp(`IPv4-mapped address \\(::ffff:0:0/96\\) of ${own.address.replace(/\./g, '\\.')}, an address of this host`),
    );
    expect((await t.api.get('/v1/webhooks')).body.data).toEqual([]);
  });

  it("refuses this host's default gateway, where the route table can be read", async () => {
    const gateway = defaultGateway();
    if (!gateway) {
      console.log('skipped: no /proc/net/route default gateway on this machine');
      return;
    }
    const r = await t.api.post('/v1/webhooks', { url: `http://${gateway}/` });
    expect([r.status, r.body.error?.code]).toEqual([400, 'url_not_allowed']);
    expect(r.body.error.message).toMatch(/this host's default gateway \(via \S+\)/);
  });

  it.each(DOCUMENTATION_AND_RESERVED)('refuses an endpoint at %s, naming the range', async (url, message) => {
    const r = await t.api.post('/v1/webhooks', { url });
    expect([r.status, r.body.error?.type, r.body.error?.code]).toEqual([400, 'invalid_request_error', 'url_not_allowed']);
    expect(r.body.error.message).toMatch(message);
  });

  it('refuses such a URL on PATCH too, and still takes a loopback receiver the operator allowed', async () => {
    const ok = await t.api.post('/v1/webhooks', { url: 'http://127.0.0.1:9/hook' });
    expect(ok.status).toBe(201);
    const patched = await t.api.patch(`/v1/webhooks/${ok.body.id}`, { url: 'http://203.0.113.5/' });
    expect([patched.status, patched.body.error?.code]).toEqual([400, 'url_not_allowed']);
    expect((await t.api.get(`/v1/webhooks/${ok.body.id}`)).body.url).toBe('http://127.0.0.1:9/hook');
    await t.api.delete(`/v1/webhooks/${ok.body.id}`);
  });
});

describe("a job's webhook_url is checked at submission", () => {
  let dataset: string;
  beforeAll(async () => {
    expect((await t.api.post('/v1/models', { name: 'hooked', task: 'classification' })).status).toBe(201);
    const ds = await t.api.post('/v1/datasets', { name: 'hooks', task: 'classification', records: blobs });
    expect(ds.status).toBe(201);
    dataset = ds.body.id;
  });

  const refused: Array<[string, string, RegExp]> = [
    ...DOCUMENTATION_AND_RESERVED.slice(0, 4).map(([url, message]): [string, string, RegExp] => [url, 'url_not_allowed', message]),
    ['http://10.0.0.5/hook', 'url_not_allowed', /a private address \(10\.0\.0\.0\/8\)/],
    ['http://[::ffff:169.254.169.254]/', 'url_not_allowed', /of 169\.254\.169\.254, a link-local address/],
    // Resolved as endpoints are: the allow-list names 127.0.0.1, not localhost.
    ['http://localhost:9/hook', 'url_not_allowed', /host localhost resolves to (127\.0\.0\.1|::1), a loopback address/],
    ['http://no-such-host.invalid/hook', 'dns_failed', /host no-such-host\.invalid does not resolve/],
    ['ftp://127.0.0.1/hook', 'scheme_not_allowed', /scheme ftp: is not allowed/],
  ];
  it.each(refused)('refuses webhook_url %s with 400 %s and writes no job', async (url, code, message) => {
    const r = await t.api.post('/v1/jobs', {
      type: 'training',
      model: 'hooked',
      dataset,
      hyperparameters: { epochs: 1 },
      webhook_url: url,
    });
    expect([r.status, r.body.error?.code, r.body.error?.param]).toEqual([400, code, 'webhook_url']);
    expect(r.body.error.message).toMatch(message);
    expect((await t.api.get('/v1/jobs')).body.data).toEqual([]);
  });

  it("refuses this host's own address as a job's webhook_url", async () => {
    const own = ownIPv4();
    if (!own) {
      console.log('skipped: this machine has no non-loopback IPv4 interface address to register');
      return;
    }
    for (const url of [`http://${own.address}:3950/`, `http://[::ffff:${own.address}]:3950/`]) {
      const r = await t.api.post('/v1/jobs', { type: 'training', model: 'hooked', dataset, webhook_url: url });
      expect([url, r.status, r.body.error?.code]).toEqual([url, 400, 'url_not_allowed']);
      expect(r.body.error.message).toContain('an address of this host');
    }
    expect((await t.api.get('/v1/jobs')).body.data).toEqual([]);
  });

  it('still accepts a job whose webhook_url the operator allowed', async () => {
    const r = await t.api.post('/v1/jobs', {
      type: 'training',
      model: 'hooked',
      dataset,
      hyperparameters: { epochs: 1 },
      webhook_url: 'http://127.0.0.1:9/job',
    });
    expect(r.status).toBe(202);
    expect(r.body.webhook_url).toBe('http://127.0.0.1:9/job');
  });
});

describe('/metrics is for the operator', () => {
  it('answers 401 without a key, 401 with a wrong token, 403 to a tenant key, 200 to the admin key and to METRICS_TOKEN', async () => {
    const anonymous = await new Api(server.url).get('/metrics');
    expect([anonymous.status, anonymous.body.error?.type, anonymous.body.error?.code]).toEqual([
      401,
      'authentication_error',
      'api_key_missing',
    ]);
    expect(anonymous.headers.get('request-id')).toMatch(/^req_/);
    expect(anonymous.text).not.toContain('aiaas_http_requests_total');

    const wrong = await new Api(server.url, `mt_${randomBytes(16).toString('hex')}`).get('/metrics');
    expect([wrong.status, wrong.body.error?.type]).toEqual([401, 'authentication_error']);

    const tenant = await t.api.get('/metrics');
    expect([tenant.status, tenant.body.error?.code]).toEqual([403, 'admin_key_required']);

    for (const key of [adminKey(), METRICS_TOKEN]) {
      const r = await new Api(server.url, key).get('/metrics');
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain('text/plain');
      expect(r.text).toMatch(/aiaas_http_requests_total\{method="GET",route="\/metrics",status="401"\} \d+/);
    }
  });

  it('answers scrapers from METRICS_ALLOW_FROM without a key, and only them', async () => {
    const allowed = await startApi({ METRICS_ALLOW_FROM: '127.0.0.0/8' });
    const other = await startApi({ METRICS_ALLOW_FROM: '10.0.0.0/8, 2001:db8::/32' });
    try {
      const r = await new Api(allowed.url).get('/metrics');
      expect(r.status).toBe(200);
      // All of it, well-formed: the process's figures and the cluster's.
      const families = metricFamilies(r.text);
      expect([families.get('aiaas_http_requests_total')?.type, families.get('aiaas_jobs')?.type]).toEqual(['counter', 'gauge']);
      expect((await new Api(other.url).get('/metrics')).status).toBe(401);
      expect((await new Api(other.url, adminKey()).get('/metrics')).status).toBe(200);
    } finally {
      await Promise.all([allowed.stop(), other.stop()]);
    }
  });

  it('says in the OpenAPI document who may read it', async () => {
    const doc = (await new Api(server.url).get('/openapi.json')).body;
    const op = doc.paths['/metrics'].get;
    expect(op.security).toEqual([{ adminKey: [] }, { metricsToken: [] }]);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '401', '403']));
    expect(doc.components.securitySchemes.metricsToken).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: any;
  text: string;
}

/** Writes bytes as they are to the API's port and reads the whole answer (the server closes the connection). */
function rawRequest(bytes: string | Buffer): Promise<RawReply> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' && chunks.length ? finish() : reject(err)));
    socket.on('end', finish);
    socket.on('connect', () => socket.write(bytes));
    function finish() {
      const all = Buffer.concat(chunks).toString('latin1');
      const split = all.indexOf('\r\n\r\n');
      const head = split < 0 ? all : all.slice(0, split);
      const text = split < 0 ? '' : all.slice(split + 4);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: the assertions say so
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body, text });
      socket.destroy();
    }
  });
}

function expectErrorShape(r: RawReply, status: number, code: string | RegExp): void {
  expect([r.status, r.headers['content-type']]).toEqual([status, 'application/json; charset=utf-8']);
  expect(r.body).toEqual({ error: { type: 'invalid_request_error', code: expect.stringMatching(code), message: expect.any(String) } });
  expect(r.headers['request-id']).toMatch(/^req_/);
  expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.text));
}

describe('broken HTTP is answered in the error shape', () => {
  it('answers a 64 KiB header with 431 and closes the connection', async () => {
    const r = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expectErrorShape(r, 431, 'request_headers_too_large');
    expect(r.headers.connection).toBe('close');
    expect(r.body.error.message).toMatch(/header/i);
  });

  it.each([
    ['a malformed request line', 'GET /healthz HTTP/1.1 junk\r\nHost: x\r\n\r\n'],
    ['an unknown method', 'G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a header name with a space', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n'],
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n'],
    ['a control character in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n'],
    ['a non-numeric Content-Length', 'POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    [
      'both Content-Length and Transfer-Encoding',
      'POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'a bad chunk size',
      'POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aik_x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ],
    ['an unknown HTTP version', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n'],
  ])('answers %s with 400', async (_what, bytes) => {
    const r = await rawRequest(bytes);
    expectErrorShape(r, 400, /^(request_malformed|header_invalid|http_version_invalid|content_length_invalid|transfer_encoding_invalid)$/);
    expect(r.headers.connection).toBe('close');
  });

  it('answers an HTTP/1.1 request without Host with 400 in the error shape', async () => {
    const r = await rawRequest('GET /healthz HTTP/1.1\r\n\r\n');
    expectErrorShape(r, 400, 'host_header_missing');
  });

  it('answers an Expect it cannot meet with 417 in the error shape', async () => {
    const r = await rawRequest('GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nConnection: close\r\n\r\n');
    expectErrorShape(r, 417, 'expectation_failed');
  });

  it('keeps serving after all of them', async () => {
    expect((await new Api(server.url).get('/healthz')).status).toBe(200);
    const r = await rawRequest('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect([r.status, r.body]).toEqual([200, { status: 'ok' }]);
  });
});
