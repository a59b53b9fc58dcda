import { ApiError } from '@app/common';
import { type ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { IS_ADMIN, IS_PUBLIC, IS_SCRAPE, type Principal, REQUIRED_SCOPE } from './principal.js';
import { RateLimiter } from './rate-limiter.js';
import { ScraperAccess } from './scraper-access.js';

/**
 * The one global guard: every route needs a key unless it says @Public(). The key was resolved to a
 * principal before the body was read (Authenticator) and passport hands it over (ApiKeyStrategy);
 * here the route's audience (admin or tenant), the tenant's status, the key's scope and the rate
 * limit are checked, in that order.
 */
@Injectable()
export class ApiKeyGuard extends AuthGuard('api-key') {
  constructor(
    private readonly reflector: Reflector,
    private readonly rateLimiter: RateLimiter,
    private readonly scrapers: ScraperAccess,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    if (this.reflector.getAllAndOverride<boolean>(IS_SCRAPE, targets) && this.scrapers.allows(req)) return true;
    await super.canActivate(context);
    const principal = req.user as Principal;
    const adminRoute = this.reflector.getAllAndOverride<boolean>(IS_ADMIN, targets) ?? false;
    if (adminRoute && principal.kind !== 'admin') {
      throw ApiError.forbidden('admin_key_required', 'This route needs an admin key (adm_...)');
    }
    if (!adminRoute && principal.kind !== 'tenant') {
      throw ApiError.forbidden('tenant_key_required', 'This route needs a tenant key (aik_...); admin keys manage tenants under /v1/admin');
    }
    if (principal.kind === 'tenant') {
      if (principal.tenantStatus === 'suspended') {
        throw ApiError.forbidden('tenant_suspended', 'This tenant is suspended; contact the operator of this service');
      }
      const scope = this.reflector.getAllAndOverride<string | undefined>(REQUIRED_SCOPE, targets);
      if (scope && !principal.scopes.has(scope)) {
        throw ApiError.forbidden('missing_scope', `This key lacks the scope '${scope}' that this route needs`);
      }
      const { state, headers } = await this.rateLimiter.take(principal).catch((err: unknown) => {
        if (err instanceof ApiError) {
          context.switchToHttp().getResponse<FastifyReply>().headers(err.headers);
        }
        throw err;
      });
      req.rate = state;
      context.switchToHttp().getResponse<FastifyReply>().headers(headers);
    }
    return true;
  }

  override handleRequest<TUser = Principal>(err: unknown, user: unknown): TUser {
    if (err) throw err;
    if (!user) throw ApiError.unauthenticated('api_key_missing', 'No API key provided: send Authorization: Bearer <key>');
    return user as TUser;
  }
}
