import { ApiError, newId } from '@app/common';
import { type IncomingMessage, maxHeaderSize, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Requests that Node's HTTP parser refuses before any route (or Fastify) sees them: header fields
 * over the limit, a malformed request line or header, a request that took too long to arrive. Node
 * and Fastify would answer these in their own formats (or with no body at all); this answers in
 * API.md's error shape, with a Request-Id, and closes the connection, since after a parse error
 * nothing more on it can be trusted. Wired as Fastify's `clientErrorHandler` (the server's
 * 'clientError' event).
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  // A reset peer, or one already gone: nobody to answer.
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || socket.destroyed) return;
  // As Node does: never write into a response already under way on this socket (it would corrupt it).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) writeRaw(socket, clientErrorFor(err.code));
  socket.destroy();
}

/** The answer for one of llhttp's (or Node's) error codes. */
export function clientErrorFor(code: string | undefined): ApiError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return ApiError.invalid(
        'request_headers_too_large',
        `The request's header fields are larger than this server accepts (${maxHeaderSize} bytes in all)`,
        undefined,
        431,
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ApiError.invalid('request_timeout', 'The request did not arrive in time; send it again', undefined, 408);
    case 'HPE_INVALID_HEADER_TOKEN':
      return ApiError.invalid(
        'header_invalid',
        'A header field is malformed: a name may not contain spaces or separators, a value no control characters',
      );
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return ApiError.invalid('content_length_invalid', 'Content-Length must be one decimal number');
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return ApiError.invalid(
        'transfer_encoding_invalid',
        'The chunked body or its Transfer-Encoding is malformed (and Transfer-Encoding may not come with Content-Length)',
      );
    case 'HPE_INVALID_VERSION':
      return ApiError.invalid('http_version_invalid', 'The request line must end with HTTP/1.1 (or HTTP/1.0)');
    default:
      return ApiError.invalid(
        'request_malformed',
        `The request is not valid HTTP/1.1 (${(code ?? 'unknown').replace(/[^A-Z0-9_]/gi, '').slice(0, 40)})`,
      );
  }
}

/** An `Expect` other than 100-continue: Node would answer 417 with no body ('checkExpectation' event). */
export function answerExpectation(req: IncomingMessage, res: ServerResponse): void {
  const expect = String(req.headers.expect ?? '').slice(0, 100);
  const err = ApiError.invalid(
    'expectation_failed',
    `Expect: ${JSON.stringify(expect)} cannot be met; only 100-continue is supported`,
    undefined,
    417,
  );
  const body = JSON.stringify(err.toBody());
  res.writeHead(err.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Request-Id': newId('req'),
    Connection: 'close',
  });
  res.end(body);
}

/**
 * An HTTP/1.1 request with no Host: Node's own check answers 400 with no body, so the server turns it
 * off (`requireHostHeader: false`) and the `onRequest` hook answers this instead.
 */
export function missingHost(req: IncomingMessage): ApiError | null {
  return req.httpVersion === '1.1' && req.headers.host === undefined
    ? ApiError.invalid('host_header_missing', 'An HTTP/1.1 request must carry a Host header')
    : null;
}

function writeRaw(socket: Socket, err: ApiError): void {
  const body = JSON.stringify(err.toBody());
  socket.write(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `Request-Id: ${newId('req')}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
