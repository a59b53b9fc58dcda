import { Body, Controller, Delete, Get, Param, Query } from '@nestjs/common';
import { z } from 'zod';
import { Admin, type AdminPrincipal, CurrentAdmin, CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { actorOf } from '../http/actor.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost, SECRET_REPLAY } from '../http/idempotency.interceptor.js';
import { idParam, listOf, PageQuery } from '../http/schemas.js';
import { ApiKeySchema, CreateApiKeyBody, CreatedApiKeySchema } from './api-keys.dto.js';
import { ApiKeysService } from './api-keys.service.js';

const KeyParams = z.object({ id: idParam('key') }).strict();

@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @IdempotentPost()
  @RequireScope('keys:write')
  @Endpoint({
    summary: 'Create an API key (its secret is shown once)',
    description:
      'A key creates only keys no stronger than itself: `scopes` a subset of its own (403 `scope_not_held` naming the others; default: ' +
      'the scopes of the calling key), `expires_at` no later than its own (403 `expires_after_caller`; default: its own expiry), and ' +
      '`rate_limit_per_minute` no higher than its own (403 `rate_limit_exceeds_caller`; default: its own limit). At most `max_api_keys` ' +
      'active keys per tenant (403 `quota_exceeded_error`). ' +
      SECRET_REPLAY,
    tags: ['API keys'],
    body: CreateApiKeyBody,
    response: CreatedApiKeySchema,
    status: 201,
    errors: [400],
  })
  create(@CurrentTenant() tenant: TenantPrincipal, @Body() body: z.infer<typeof CreateApiKeyBody>) {
    return this.keys.create(actorOf(tenant), tenant.tenantId, body, tenant);
  }

  @Get()
  @RequireScope('keys:read')
  @Endpoint({
    summary: "List the tenant's API keys (scope keys:read)",
    tags: ['API keys'],
    query: PageQuery,
    response: listOf(ApiKeySchema),
    errors: [400],
  })
  list(@CurrentTenant() tenant: TenantPrincipal, @Query() query: z.infer<typeof PageQuery>) {
    return this.keys.list(tenant.tenantId, query);
  }

  @Delete(':id')
  @RequireScope('keys:write')
  @Endpoint({
    summary: 'Revoke an API key (fails on every API instance within a second)',
    description: 'A key cannot revoke a key that holds scopes it lacks (403 `scope_not_held`).',
    tags: ['API keys'],
    params: KeyParams,
    response: ApiKeySchema,
    errors: [400, 404],
  })
  revoke(@CurrentTenant() tenant: TenantPrincipal, @Param() { id }: z.infer<typeof KeyParams>) {
    return this.keys.revoke(actorOf(tenant), tenant.tenantId, id, tenant);
  }
}

const TenantParams = z.object({ id: idParam('ten') }).strict();
const TenantKeyParams = z.object({ id: idParam('ten'), key_id: idParam('key') }).strict();
const tags = ['Admin: tenants'];

@Admin()
@Controller('v1/admin/tenants/:id/api-keys')
export class AdminApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @IdempotentPost()
  @Endpoint({
    summary: 'Create an API key for a tenant',
    description: `\`scopes\` default to all of them. At most \`max_api_keys\` active keys per tenant (403 \`quota_exceeded_error\`). ${SECRET_REPLAY}`,
    tags,
    params: TenantParams,
    body: CreateApiKeyBody,
    response: CreatedApiKeySchema,
    status: 201,
    errors: [400, 404],
  })
  create(
    @CurrentAdmin() admin: AdminPrincipal,
    @Param() { id }: z.infer<typeof TenantParams>,
    @Body() body: z.infer<typeof CreateApiKeyBody>,
  ) {
    return this.keys.create(actorOf(admin), id, body);
  }

  @Get()
  @Endpoint({
    summary: "List a tenant's API keys",
    tags,
    params: TenantParams,
    query: PageQuery,
    response: listOf(ApiKeySchema),
    errors: [400, 404],
  })
  list(@Param() { id }: z.infer<typeof TenantParams>, @Query() query: z.infer<typeof PageQuery>) {
    return this.keys.list(id, query, true);
  }

  @Delete(':key_id')
  @Endpoint({ summary: "Revoke a tenant's API key", tags, params: TenantKeyParams, response: ApiKeySchema, errors: [400, 404] })
  revoke(@CurrentAdmin() admin: AdminPrincipal, @Param() p: z.infer<typeof TenantKeyParams>) {
    return this.keys.revoke(actorOf(admin), p.id, p.key_id);
  }
}
