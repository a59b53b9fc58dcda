import { ApiError } from '@app/common';
import { Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { sendError } from '../http/errors.js';
import { AuthFailureThrottle } from './failure-throttle.js';
import { KeyStore } from './key-store.js';
import type { Principal } from './principal.js';
import { ScraperAccess } from './scraper-access.js';

/** RFC 6750's header form, the only one taken: a key in the URL or the body ends up in logs and histories. */
const BEARER = /^Bearer +([^\s]+) *$/i;

const missing = () => ApiError.unauthenticated('api_key_missing', 'No API key provided: send Authorization: Bearer <key>');

/**
 * Resolves the request's key as soon as its headers are in (Fastify's onRequest hook), before any
 * body is read: a request with a body and no valid key is answered there, so a stranger's upload
 * costs neither parsing nor memory. Cached keys are answered from memory without a promise; an
 * unknown key costs one database lookup, and an address that presents too many of them gets 429
 * before any. Without a body, the outcome waits on the request for `ApiKeyGuard`, which knows
 * whether the route is public.
 */
@Injectable()
export class Authenticator {
  constructor(
    private readonly keys: KeyStore,
    private readonly throttle: AuthFailureThrottle,
    private readonly scrapers: ScraperAccess,
  ) {}

  readonly onRequest = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    // A scraper's METRICS_TOKEN is no API key: no lookup, and no failure counted against its address.
    if (isMetrics(req.url) && this.scrapers.allows(req)) return done();
    const header = req.headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header);
    if (!match) return this.refuse(req, reply, done, header === undefined && this.keyInUrl(req) ? inUrl() : missing());
    const secret = match[1];
    const { hash, known } = this.keys.peek(secret);
    if (known !== undefined) return this.settle(req, reply, done, known);
    this.lookup(req.ip, secret, hash).then(
      (principal) => this.settle(req, reply, done, principal),
      (err: unknown) => this.refuse(req, reply, done, err),
    );
  };

  private async lookup(address: string, secret: string, hash: string): Promise<Principal | null> {
    const wait = await this.throttle.retryAfter(address);
    if (wait > 0) {
      throw new ApiError(
        429,
        'rate_limit_error',
        'auth_failures_per_minute',
        `Too many unknown API keys from this address; retry after ${wait} s`,
        undefined,
        {
          'Retry-After': String(wait),
        },
      );
    }
    const principal = await this.keys.load(secret, hash).catch(() => {
      throw ApiError.unavailable('dependency_unavailable', 'Cannot check the API key right now (database unreachable); retry shortly');
    });
    if (!principal) this.throttle.failed(address);
    return principal;
  }

  private settle(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, principal: Principal | null): void {
    if (!principal) return this.refuse(req, reply, done, ApiError.unauthenticated('api_key_invalid', 'Invalid API key'));
    if (principal.revoked)
      return this.refuse(req, reply, done, ApiError.unauthenticated('api_key_revoked', 'This API key has been revoked'));
    if (principal.kind === 'tenant' && principal.expiresAt !== null && principal.expiresAt <= Date.now()) {
      return this.refuse(req, reply, done, ApiError.unauthenticated('api_key_expired', 'This API key has expired'));
    }
    this.keys.touch(principal);
    req.user = principal;
    done();
  }

  /** With a body: answered now, unread. Without: left for the guard (a public route ignores it). */
  private refuse(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, err: unknown): void {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (hasBody) {
      sendError(reply, req, err);
      return;
    }
    req.authError = err;
    done();
  }

  private keyInUrl(req: FastifyRequest): boolean {
    const q = req.query as Record<string, unknown> | undefined;
    return q !== undefined && q !== null && typeof q === 'object' && ('access_token' in q || 'api_key' in q);
  }
}

function inUrl(): ApiError {
  return ApiError.unauthenticated('api_key_in_url', 'API keys are taken only in the Authorization header (Bearer <key>), never in the URL');
}

function isMetrics(url: string): boolean {
  return url === '/metrics' || url.startsWith('/metrics?');
}
