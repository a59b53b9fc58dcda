import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { answerClientError, answerExpectation, clientErrorFor } from './client-errors.js';

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.on('clientError', answerClientError);
  server.on('checkExpectation', answerExpectation);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function raw(bytes: string): Promise<{ head: string; body: any }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const done = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [head, body] = text.split('\r\n\r\n');
      resolve({ head, body: body ? JSON.parse(body) : null });
    };
    socket.on('end', done);
    socket.on('error', (err: NodeJS.ErrnoException) => (chunks.length ? done() : reject(err)));
  });
}

describe("answers to what Node's HTTP parser refuses", () => {
  it.each([
    ['a 64 KiB header', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431, 'request_headers_too_large'],
    ['an unknown method', 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'request_malformed'],
    ['a malformed request line', 'GET / HTTP/1.1 junk\r\nHost: x\r\n\r\n', 400, 'http_version_invalid'],
    ['an unknown HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'http_version_invalid'],
    ['a header name with a space', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', 400, 'header_invalid'],
    ['a control character in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400, 'header_invalid'],
    ['a non-numeric Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'content_length_invalid'],
    [
      'both Content-Length and Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
      'transfer_encoding_invalid',
    ],
    ['a bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'transfer_encoding_invalid'],
    ['an Expect other than 100-continue', 'GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n', 417, 'expectation_failed'],
  ])('answers %s in the error shape, and closes', async (_what, bytes, status, code) => {
    const r = await raw(bytes);
    expect(r.head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(r.head).toMatch(/\r\nConnection: close(\r\n|$)/i);
    expect(r.head).toMatch(/\r\nRequest-Id: req_/i);
    expect(r.body).toEqual({ error: { type: 'invalid_request_error', code, message: expect.any(String) } });
  });

  it('maps request timeouts to 408 and keeps unknown parser codes printable', () => {
    expect(clientErrorFor('ERR_HTTP_REQUEST_TIMEOUT')).toMatchObject({ status: 408, code: 'request_timeout' });
    expect(clientErrorFor('HPE_STRICT\r\n<x>').message).toBe('The request is not valid HTTP/1.1 (HPE_STRICTx)');
    expect(clientErrorFor(undefined).message).toContain('(unknown)');
  });
});
