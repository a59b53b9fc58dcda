import { ApiError, type ErrorBody } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { applyDecorators, type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor, Post, SetMetadata, UseInterceptors } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { catchError, from, map, type Observable, of, switchMap } from 'rxjs';
import { toApiError } from './errors.js';

/**
 * What a route answers when its status depends on the outcome (200 or 202 under `Prefer: wait`)
 * or it sets headers (`Location`): such routes are declared with `IdempotentPost(path, { answers: true })`
 * and this interceptor sends the answer, first or replayed.
 */
export class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

const ANSWERS = 'aiaas:answers';

/** A first request older than this that never finished (its process died) no longer blocks its key. */
const ABANDONED_AFTER_MS = 5 * 60_000;

/**
 * `Idempotency-Key` on POSTs (API.md): the first request claims (scope, key) with the hash of its
 * method, path and body; a repeat replays the stored answer, another body is a 422, and a repeat
 * while the first runs is a 409. 2xx and 4xx answers are kept; after a 5xx the key is released
 * so that the client's retry runs again.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const answers = this.reflector.get<boolean | undefined>(ANSWERS, context.getHandler()) ?? false;
    const send = (result: unknown) => {
      if (!(result instanceof Answer)) return result;
      reply.status(result.status).headers(result.headers).send(result.body);
      return undefined;
    };
    const header = req.headers['idempotency-key'];
    if (req.method !== 'POST' || header === undefined || !req.user) return next.handle().pipe(map(send));
    const key = Array.isArray(header) ? header[0] : header;
    if (key.length === 0 || key.length > 255) {
      throw ApiError.invalid('idempotency_key_invalid', 'Idempotency-Key must be 1 to 255 characters', 'Idempotency-Key');
    }
    const scope = req.user.kind === 'tenant' ? req.user.tenantId : 'admin';
    const path = req.url.split('?')[0];
    // A streamed upload is not read yet: its type and length stand for its body.
    const body = req.body instanceof Readable ? `upload ${req.headers['content-type']} ${req.headers['content-length'] ?? '?'}` : JSON.stringify(req.body ?? null);
    const hash = createHash('sha256').update(`${req.method} ${req.url}\n${body}`).digest('hex');
    const successStatus = this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ?? 201;

    return from(this.claim(scope, key, req.method, path, hash)).pipe(
      switchMap((stored) => {
        if (stored) {
          reply.header('Idempotent-Replayed', 'true');
          reply.status(stored.status);
          if (stored.status >= 400) throw ApiError.fromBody(stored.status, stored.body as ErrorBody);
          return of(answers ? send(new Answer(stored.status, stored.body, stored.headers ?? {})) : stored.body);
        }
        return next.handle().pipe(
          switchMap((result) => {
            const answer = result instanceof Answer ? result : new Answer(successStatus, result);
            return from(this.finish(scope, key, answer.status, answer.body, answer.headers).then(() => send(result)));
          }),
          catchError((err: unknown) => {
            const apiError = toApiError(err, String(req.id));
            const done = apiError.status >= 500 ? this.release(scope, key) : this.finish(scope, key, apiError.status, apiError.toBody());
            return from(done.then(() => Promise.reject(err)));
          }),
        );
      }),
    );
  }

  /** Claims the key, or returns the stored answer of an earlier request with it. */
  private async claim(scope: string, key: string, method: string, path: string, hash: string): Promise<{ status: number; body: unknown; headers: Record<string, string> | null } | null> {
    const expires = new Date(Date.now() + this.config.idempotencyTtlHours * 3_600_000);
    const inserted = await this.db.pool.query(
      `INSERT INTO idempotency_records (scope, key, method, path, request_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, key) DO UPDATE SET method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
         status_code = NULL, response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
       WHERE idempotency_records.expires_at < now()
          OR (idempotency_records.status_code IS NULL AND idempotency_records.created_at < now() - make_interval(secs => $7))
       RETURNING 1`,
      [scope, key, method, path, hash, expires, ABANDONED_AFTER_MS / 1000],
    );
    if (inserted.rowCount === 1) return null;
    const { rows } = await this.db.pool.query<{ request_hash: string; status_code: number | null; response_body: unknown; response_headers: Record<string, string> | null }>(
      'SELECT request_hash, status_code, response_body, response_headers FROM idempotency_records WHERE scope = $1 AND key = $2',
      [scope, key],
    );
    const row = rows[0];
    if (!row) return this.claim(scope, key, method, path, hash); // released meanwhile
    if (row.request_hash !== hash) {
      throw new ApiError(422, 'idempotency_error', 'idempotency_key_reused', 'This Idempotency-Key was used with another request (method, path or body differ); use a new key', 'Idempotency-Key');
    }
    if (row.status_code === null) {
      throw new ApiError(409, 'idempotency_error', 'idempotency_request_in_progress', 'A request with this Idempotency-Key is still being processed; retry after it finishes', 'Idempotency-Key');
    }
    return { status: row.status_code, body: row.response_body, headers: row.response_headers };
  }

  private async finish(scope: string, key: string, status: number, body: unknown, headers: Record<string, string> = {}): Promise<void> {
    await this.db.pool
      .query('UPDATE idempotency_records SET status_code = $3, response_body = $4, response_headers = $5 WHERE scope = $1 AND key = $2', [
        scope,
        key,
        status,
        JSON.stringify(body ?? null),
        Object.keys(headers).length ? JSON.stringify(headers) : null,
      ])
      .catch(() => undefined);
  }

  private async release(scope: string, key: string): Promise<void> {
    await this.db.pool.query('DELETE FROM idempotency_records WHERE scope = $1 AND key = $2 AND status_code IS NULL', [scope, key]).catch(() => undefined);
  }
}

/**
 * A POST route that honours Idempotency-Key. Every tenant and admin POST is declared with it.
 * `answers`: the handler returns an `Answer` (and takes `@Res()`), which this interceptor sends.
 */
export const IdempotentPost = (path?: string, options: { answers?: boolean } = {}) =>
  applyDecorators(Post(path), UseInterceptors(IdempotencyInterceptor), SetMetadata(ANSWERS, options.answers ?? false));
