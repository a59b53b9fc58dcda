import { Body, Controller, Delete, Get, Param, Patch, Query } from '@nestjs/common';
import { z } from 'zod';
import { Admin, type AdminPrincipal, CurrentAdmin } from '../auth/principal.js';
import { actorOf } from '../http/actor.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost } from '../http/idempotency.interceptor.js';
import { idParam, listOf } from '../http/schemas.js';
import {
  CreateTenantBody,
  TenantListQuery,
  TenantSchema,
  tenantView,
  TenantUsageSchema,
  UpdateTenantBody,
  UsageQuery,
} from './tenants.dto.js';
import { TenantsService } from './tenants.service.js';

const TenantParams = z.object({ id: idParam('ten') }).strict();
const tags = ['Admin: tenants'];

@Admin()
@Controller('v1/admin/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @IdempotentPost()
  @Endpoint({ summary: 'Create a tenant', tags, body: CreateTenantBody, response: TenantSchema, status: 201, errors: [400] })
  create(@CurrentAdmin() admin: AdminPrincipal, @Body() body: z.infer<typeof CreateTenantBody>) {
    return this.tenants.create(actorOf(admin), body);
  }

  @Get()
  @Endpoint({ summary: 'List tenants, newest first', tags, query: TenantListQuery, response: listOf(TenantSchema), errors: [400] })
  list(@Query() query: z.infer<typeof TenantListQuery>) {
    return this.tenants.list(query);
  }

  @Get(':id')
  @Endpoint({ summary: 'Get a tenant', tags, params: TenantParams, response: TenantSchema, errors: [400, 404] })
  async get(@Param() { id }: z.infer<typeof TenantParams>) {
    return tenantView(await this.tenants.get(id));
  }

  @Patch(':id')
  @Endpoint({
    summary: 'Update a tenant: name, plan, quota overrides, or status (suspend and reactivate)',
    tags,
    params: TenantParams,
    body: UpdateTenantBody,
    response: TenantSchema,
    errors: [400, 404],
  })
  update(
    @CurrentAdmin() admin: AdminPrincipal,
    @Param() { id }: z.infer<typeof TenantParams>,
    @Body() body: z.infer<typeof UpdateTenantBody>,
  ) {
    return this.tenants.update(actorOf(admin), id, body);
  }

  @Delete(':id')
  @Endpoint({
    summary: 'Delete a tenant and erase everything it owns',
    tags,
    params: TenantParams,
    response: z.object({ id: z.string(), object: z.literal('tenant'), deleted: z.literal(true) }),
    errors: [400, 404],
  })
  delete(@CurrentAdmin() admin: AdminPrincipal, @Param() { id }: z.infer<typeof TenantParams>) {
    return this.tenants.delete(actorOf(admin), id);
  }

  @Get(':id/usage')
  @Endpoint({
    summary: 'A tenant’s usage between two days (default: this month)',
    tags,
    params: TenantParams,
    query: UsageQuery,
    response: TenantUsageSchema,
    errors: [400, 404],
  })
  usage(@Param() { id }: z.infer<typeof TenantParams>, @Query() query: z.infer<typeof UsageQuery>) {
    return this.tenants.usageOf(id, query);
  }
}
