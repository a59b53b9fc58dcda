import { ApiError, type ErrorBody } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { decryptSecret, encryptSecret } from '@app/webhooks';
import {
  applyDecorators,
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  Post,
  SetMetadata,
  UseInterceptors,
} from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { catchError, from, map, type Observable, of, switchMap } from 'rxjs';
import { toApiError } from './errors.js';
import { IdempotencyQuota } from './idempotency-quota.js';

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
/** How a route that answers a secret replays it, for its OpenAPI description. */
export const SECRET_REPLAY =
  'With `Idempotency-Key`, a repeat by the same API key replays this answer, secret included (stored encrypted, AES-256-GCM); ' +
  'the same Idempotency-Key from another key of the tenant is another request, run on its own: idempotency is scoped to the key.';

/** Answer fields that hold a secret shown once (API keys, webhook secrets), on whichever route answers them. */
const SECRET_FIELDS = ['secret'] as const;

/** A first request older than this that never finished (its process died) no longer blocks its key. */
const ABANDONED_AFTER_MS = 5 * 60_000;

/** Where a record lives: its scope (tenant and key, or admin key), key, and the context its secrets are sealed under. */
interface RecordRef {
  scope: string;
  key: string;
  tenantId: string | null;
  sealContext: string;
}

interface StoredAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string> | null;
  sealed: string | null;
  omittedBytes: number | null;
}

/**
 * `Idempotency-Key` on POSTs (API.md): the first request claims (scope, key) with the hash of its
 * method, path and body; a repeat replays the stored answer, another body is a 422, and a repeat
 * while the first runs is a 409. The scope is the API key that made the request (tenant and key
 * id, or the admin key), so another key of the same tenant never sees its answers. An answer's
 * `secret` (a new API key or webhook secret) is stored apart from it, encrypted (AES-256-GCM under
 * WEBHOOK_SECRET_KEY) and bound to the record, and put back only on replay. 2xx and 4xx answers are
 * kept; after a 5xx, a 429 or a 408 the key is released so that the client's retry runs again. An answer over
 * IDEMPOTENCY_MAX_ANSWER_BYTES is not kept, but the key stays claimed: a replay is a 409 that says
 * so, never a second execution.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly reflector: Reflector,
    private readonly quota: IdempotencyQuota,
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
    const user = req.user;
    if (req.method !== 'POST' || header === undefined || !user) return next.handle().pipe(map(send));
    const key = Array.isArray(header) ? header[0] : header;
    if (key.length === 0 || key.length > 255) {
      throw ApiError.invalid('idempotency_key_invalid', 'Idempotency-Key must be 1 to 255 characters', 'Idempotency-Key');
    }
    const scope = user.kind === 'tenant' ? `${user.tenantId}/${user.keyId}` : `admin/${user.keyId}`;
    const ref: RecordRef = {
      scope,
      key,
      tenantId: user.kind === 'tenant' ? user.tenantId : null,
      sealContext: `idempotency:${scope}:${key}`,
    };
    const path = req.url.split('?')[0];
    // A streamed upload is not read yet: its type and length stand for its body.
    const body =
      req.body instanceof Readable
        ? `upload ${req.headers['content-type']} ${req.headers['content-length'] ?? '?'}`
        : JSON.stringify(req.body ?? null);
    const hash = createHash('sha256').update(`${req.method} ${req.url}\n${body}`).digest('hex');
    const successStatus = this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ?? 201;
    const release = () => {
      if (user.kind === 'tenant') this.quota.giveBack(user);
      return this.release(ref);
    };

    const claimed = this.claim(ref, req.method, path, hash).then(async (stored) => {
      if (stored || user.kind !== 'tenant') return stored;
      await this.quota.take(user).catch(async (err: unknown) => {
        await this.release(ref);
        throw err;
      });
      return null;
    });
    return from(claimed).pipe(
      switchMap((stored) => {
        if (stored) {
          reply.header('Idempotent-Replayed', 'true');
          if (stored.omittedBytes !== null) throw this.notStored(stored);
          reply.status(stored.status);
          if (stored.status >= 400) throw ApiError.fromBody(stored.status, stored.body as ErrorBody);
          const replayed = this.unseal(stored, ref);
          return of(answers ? send(new Answer(stored.status, replayed, stored.headers ?? {})) : replayed);
        }
        return next.handle().pipe(
          switchMap((result) => {
            const answer = result instanceof Answer ? result : new Answer(successStatus, result);
            return from(this.finish(ref, answer.status, answer.body, answer.headers).then(() => send(result)));
          }),
          catchError((err: unknown) => {
            const apiError = toApiError(err, String(req.id));
            // A refusal that says "later" (429, 408) is not an answer to keep, as Stripe keeps none for it.
            const transient = apiError.status >= 500 || apiError.status === 429 || apiError.status === 408;
            const done = transient ? release() : this.finish(ref, apiError.status, apiError.toBody());
            return from(done.then(() => Promise.reject(err)));
          }),
        );
      }),
    );
  }

  /** Claims the key, or returns the stored answer of an earlier request with it. */
  private async claim(ref: RecordRef, method: string, path: string, hash: string): Promise<StoredAnswer | null> {
    const expires = new Date(Date.now() + this.config.idempotencyTtlHours * 3_600_000);
    const inserted = await this.db.pool.query(
      `INSERT INTO idempotency_records (scope, key, tenant_id, method, path, request_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (scope, key) DO UPDATE SET method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
         status_code = NULL, response_body = NULL, response_headers = NULL, response_sealed = NULL, omitted_bytes = NULL,
         created_at = now(), expires_at = EXCLUDED.expires_at
       WHERE idempotency_records.expires_at < now()
          OR (idempotency_records.status_code IS NULL AND idempotency_records.created_at < now() - make_interval(secs => $8))
       RETURNING 1`,
      [ref.scope, ref.key, ref.tenantId, method, path, hash, expires, ABANDONED_AFTER_MS / 1000],
    );
    if (inserted.rowCount === 1) return null;
    const { rows } = await this.db.pool.query<{
      request_hash: string;
      status_code: number | null;
      response_body: unknown;
      response_headers: Record<string, string> | null;
      response_sealed: string | null;
      omitted_bytes: number | null;
    }>(
      'SELECT request_hash, status_code, response_body, response_headers, response_sealed, omitted_bytes FROM idempotency_records WHERE scope = $1 AND key = $2',
      [ref.scope, ref.key],
    );
    const row = rows[0];
    if (!row) return this.claim(ref, method, path, hash); // released meanwhile
    if (row.request_hash !== hash) {
      throw new ApiError(
        422,
        'idempotency_error',
        'idempotency_key_reused',
        'This Idempotency-Key was used with another request (method, path or body differ); use a new key',
        'Idempotency-Key',
      );
    }
    if (row.status_code === null) {
      throw new ApiError(
        409,
        'idempotency_error',
        'idempotency_request_in_progress',
        'A request with this Idempotency-Key is still being processed; retry after it finishes',
        'Idempotency-Key',
      );
    }
    return {
      status: row.status_code,
      body: row.response_body,
      headers: row.response_headers,
      sealed: row.response_sealed,
      omittedBytes: row.omitted_bytes,
    };
  }

  private async finish(ref: RecordRef, status: number, body: unknown, headers: Record<string, string> = {}): Promise<void> {
    const { open, sealed } = this.seal(body, ref);
    const text = JSON.stringify(open ?? null);
    const bytes = Buffer.byteLength(text);
    const tooLarge = bytes > this.config.idempotencyMaxAnswerBytes;
    await this.db.pool
      .query(
        'UPDATE idempotency_records SET status_code = $3, response_body = $4, response_headers = $5, response_sealed = $6, omitted_bytes = $7 WHERE scope = $1 AND key = $2',
        [
          ref.scope,
          ref.key,
          status,
          tooLarge ? null : text,
          Object.keys(headers).length ? JSON.stringify(headers) : null,
          tooLarge ? null : sealed,
          tooLarge ? bytes : null,
        ],
      )
      .catch(() => undefined);
  }

  private async release(ref: RecordRef): Promise<void> {
    await this.db.pool
      .query('DELETE FROM idempotency_records WHERE scope = $1 AND key = $2 AND status_code IS NULL', [ref.scope, ref.key])
      .catch(() => undefined);
  }

  /** The answer without its secret fields, and those fields encrypted for this record alone. */
  private seal(body: unknown, ref: RecordRef): { open: unknown; sealed: string | null } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return { open: body, sealed: null };
    const open: Record<string, unknown> = { ...(body as Record<string, unknown>) };
    const secrets: Record<string, unknown> = {};
    for (const f of SECRET_FIELDS) {
      if (f in open) {
        secrets[f] = open[f];
        delete open[f];
      }
    }
    if (Object.keys(secrets).length === 0) return { open: body, sealed: null };
    return { open, sealed: encryptSecret(JSON.stringify(secrets), this.config.webhookSecretKey, ref.sealContext) };
  }

  private unseal(stored: StoredAnswer, ref: RecordRef): unknown {
    if (stored.sealed === null) return stored.body;
    try {
      return {
        ...(stored.body as Record<string, unknown>),
        ...(JSON.parse(decryptSecret(stored.sealed, this.config.webhookSecretKey, ref.sealContext)) as object),
      };
    } catch {
      throw new ApiError(
        409,
        'idempotency_error',
        'idempotency_answer_unavailable',
        "The first request with this Idempotency-Key succeeded, but its secret can no longer be decrypted (the service's encryption key changed); it is not run again",
        'Idempotency-Key',
      );
    }
  }

  private notStored(stored: StoredAnswer): ApiError {
    return new ApiError(
      409,
      'idempotency_error',
      'idempotency_answer_not_stored',
      `The first request with this Idempotency-Key answered ${stored.status}, but its answer (${stored.omittedBytes} bytes) was over the ${this.config.idempotencyMaxAnswerBytes}-byte limit of kept answers; it is not run again: read the result with a GET`,
      'Idempotency-Key',
      stored.headers ?? {},
    );
  }
}

/**
 * A POST route that honours Idempotency-Key. Every tenant and admin POST is declared with it.
 * `answers`: the handler returns an `Answer` (and takes `@Res()`), which this interceptor sends.
 */
export const IdempotentPost = (path?: string, options: { answers?: boolean } = {}) =>
  applyDecorators(Post(path), UseInterceptors(IdempotencyInterceptor), SetMetadata(ANSWERS, options.answers ?? false));
