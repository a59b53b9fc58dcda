import { ApiError, newId } from '@app/common';
import { isDatabaseUnavailable, isUnstorableText } from '@app/db';
import { isRedisUnavailable } from '@app/queue';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';

const logger = new Logger('errors');

/** Fastify's own errors (body parsing, limits) by code, as API.md's error shape. */
const FASTIFY_ERRORS: Record<string, (err: Error) => ApiError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    ApiError.invalid('body_too_large', 'The request body is larger than this endpoint accepts', undefined, 413),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new ApiError(415, 'invalid_request_error', 'unsupported_media_type', 'Unsupported Content-Type: send application/json'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ApiError.invalid('body_invalid_json', 'The body is empty but Content-Type is application/json'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ApiError.invalid('body_invalid', 'Content-Length does not match the body'),
  FST_ERR_CTP_INVALID_JSON_BODY: (e) => ApiError.invalid('body_invalid_json', `The body is not valid JSON: ${e.message}`),
  FST_ERR_MAX_PARAM_LENGTH: () => ApiError.invalid('url_too_long', 'A path parameter is longer than any id', undefined, 414),
  FST_ERR_BAD_URL: () => ApiError.invalid('url_invalid', 'The URL is malformed'),
  FST_ERR_ASYNC_CONSTRAINT: () => ApiError.invalid('url_invalid', 'The URL is malformed'),
};

/** Maps anything thrown while serving a request to a status and API.md's error body. 5xx never leak details. */
export function toApiError(err: unknown, requestId?: string): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as Error & { code?: string; statusCode?: number; status?: number; type?: string };
  if (e?.code && FASTIFY_ERRORS[e.code]) return FASTIFY_ERRORS[e.code](e);
  if (e instanceof SyntaxError || e?.type === 'entity.parse.failed') {
    return ApiError.invalid('body_invalid_json', `The body is not valid JSON: ${e.message}`);
  }
  const status = err instanceof HttpException ? err.getStatus() : (e?.statusCode ?? e?.status);
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 404) return new ApiError(404, 'invalid_request_error', 'route_not_found', 'No such route');
    if (status === 413) return FASTIFY_ERRORS.FST_ERR_CTP_BODY_TOO_LARGE(e);
    if (status === 415) return FASTIFY_ERRORS.FST_ERR_CTP_INVALID_MEDIA_TYPE(e);
    if (/json/i.test(e.message)) return ApiError.invalid('body_invalid_json', `The body is not valid JSON: ${e.message}`);
    return ApiError.invalid('bad_request', e.message, undefined, status);
  }
  // A backstop for inputs that reach PostgreSQL without a JSON body's check (query strings, CSV):
  // U+0000 cannot be stored in text or jsonb, which is the request's fault, not ours.
  if (isUnstorableText(err)) return ApiError.invalid('invalid_characters', 'A value contains the character U+0000, which cannot be stored');
  const errorId = requestId ?? newId('req');
  // PostgreSQL down or restarting: a 503 the client may retry, as when a key cannot be checked, not a
  // 500 that says we have a bug (the fault suite restarts PostgreSQL under the API to hold us to it).
  if (isDatabaseUnavailable(err)) {
    logger.warn({ error_id: errorId, err: (err as Error)?.message?.slice(0, 300) }, 'database unavailable');
    return new ApiError(
      503,
      'api_error',
      'database_unavailable',
      `The database is not answering; retry shortly (request ${errorId})`,
      undefined,
      { 'Retry-After': '2' },
    );
  }
  // Redis down, or a cluster slot without a master while a replica is promoted: retry shortly.
  if (isRedisUnavailable(err)) {
    logger.warn({ error_id: errorId, err: (err as Error).message.slice(0, 300) }, 'redis unavailable');
    return new ApiError(503, 'api_error', 'redis_unavailable', `Redis is not answering; retry shortly (request ${errorId})`, undefined, {
      'Retry-After': '2',
    });
  }
  logger.error({ err, error_id: errorId }, 'unhandled error');
  return new ApiError(500, 'api_error', 'internal_error', `Something went wrong on our side; quote ${errorId} when you report it`);
}

export function sendError(reply: FastifyReply, request: FastifyRequest, err: unknown): FastifyReply {
  let apiError = toApiError(err, String(request.id));
  if (apiError.code === 'unsupported_media_type') {
    const type = String(request.headers['content-type'] ?? 'none').slice(0, 100);
    apiError = new ApiError(415, apiError.type, apiError.code, `Unsupported Content-Type '${type}': send application/json`);
  }
  for (const [name, value] of Object.entries(apiError.headers)) reply.header(name, value);
  return reply.status(apiError.status).type('application/json').send(apiError.toBody());
}

@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendError(http.getResponse<FastifyReply>(), http.getRequest<FastifyRequest>(), exception);
  }
}
