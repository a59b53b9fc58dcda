import type { Quotas, Scope } from '@app/common';
import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';

export interface TenantPrincipal {
  kind: 'tenant';
  keyId: string;
  keyHash: string;
  tenantId: string;
  tenantName: string;
  tenantCreatedAt: string;
  tenantStatus: 'active' | 'suspended';
  plan: string;
  quotas: Quotas;
  scopes: ReadonlySet<string>;
  expiresAt: number | null;
  revoked: boolean;
  /** The key's own requests-per-minute limit, when narrower than the tenant's. */
  keyRateLimit: number | null;
}

export interface AdminPrincipal {
  kind: 'admin';
  keyId: string;
  keyHash: string;
  revoked: boolean;
}

export type Principal = TenantPrincipal | AdminPrincipal;

/** What the rate limiter found for this request; `GET /v1/me` shows it. */
export interface RateState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    user?: Principal;
    /** Why the request's key was refused, when it had no body (see Authenticator); the guard throws it unless the route is public. */
    authError?: unknown;
    rate?: RateState;
  }
}

export const IS_PUBLIC = 'aiaas:public';
export const IS_ADMIN = 'aiaas:admin';
export const IS_SCRAPE = 'aiaas:scrape';
export const REQUIRED_SCOPE = 'aiaas:scope';

/** The only way out of authentication. */
export const Public = () => SetMetadata(IS_PUBLIC, true);
/** Admin keys only; tenant keys get 403. */
export const Admin = () => SetMetadata(IS_ADMIN, true);
/** With @Admin(): a Prometheus scraper may also come in without a key (METRICS_TOKEN, METRICS_ALLOW_FROM; see ScraperAccess). */
export const Scrape = () => SetMetadata(IS_SCRAPE, true);
/** The scope a tenant key needs for this route. */
export const RequireScope = (scope: Scope) => SetMetadata(REQUIRED_SCOPE, scope);

export const CurrentTenant = createParamDecorator((_: unknown, ctx: ExecutionContext): TenantPrincipal => {
  const user = ctx.switchToHttp().getRequest<{ user?: Principal }>().user;
  if (user?.kind !== 'tenant') throw new Error('CurrentTenant used on a route that is not a tenant route');
  return user;
});

export const CurrentAdmin = createParamDecorator((_: unknown, ctx: ExecutionContext): AdminPrincipal => {
  const user = ctx.switchToHttp().getRequest<{ user?: Principal }>().user;
  if (user?.kind !== 'admin') throw new Error('CurrentAdmin used on a route that is not an admin route');
  return user;
});
