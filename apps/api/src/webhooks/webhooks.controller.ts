import { Body, Controller, Delete, Get, Param, Patch, Query } from '@nestjs/common';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { actorOf } from '../http/actor.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost, SECRET_REPLAY } from '../http/idempotency.interceptor.js';
import { idParam, listOf, PageQuery } from '../http/schemas.js';
import {
  CreateWebhookBody,
  DefaultSecretSchema,
  DeliverySchema,
  UpdateWebhookBody,
  WebhookSchema,
  WebhookWithSecretSchema,
} from './webhooks.dto.js';
import { WebhooksService } from './webhooks.service.js';

const WebhookParams = z.object({ id: idParam('whe') }).strict();
const MessageParams = z.object({ id: idParam('whe'), message_id: idParam('msg') }).strict();
const tags = ['Webhooks'];

@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @IdempotentPost()
  @RequireScope('webhooks:write')
  @Endpoint({
    summary: 'Register a webhook endpoint (its secret is shown once)',
    description: `At most \`max_webhook_endpoints\` per tenant (403 \`quota_exceeded_error\`). ${SECRET_REPLAY}`,
    tags,
    body: CreateWebhookBody,
    response: WebhookWithSecretSchema,
    status: 201,
    errors: [400],
  })
  create(@CurrentTenant() p: TenantPrincipal, @Body() body: z.infer<typeof CreateWebhookBody>) {
    return this.webhooks.create(actorOf(p), p.tenantId, body, p.quotas);
  }

  @Get()
  @RequireScope('webhooks:read')
  @Endpoint({ summary: "List the tenant's webhook endpoints", tags, query: PageQuery, response: listOf(WebhookSchema), errors: [400] })
  list(@CurrentTenant() p: TenantPrincipal, @Query() query: z.infer<typeof PageQuery>) {
    return this.webhooks.list(p.tenantId, query);
  }

  @Get('default/secret')
  @RequireScope('webhooks:read')
  @Endpoint({ summary: "The secret that signs deliveries to jobs' own webhook_url", tags, response: DefaultSecretSchema })
  defaultSecret(@CurrentTenant() p: TenantPrincipal) {
    return this.webhooks.defaultSecret(p.tenantId);
  }

  @Get(':id')
  @RequireScope('webhooks:read')
  @Endpoint({ summary: 'A webhook endpoint', tags, params: WebhookParams, response: WebhookSchema, errors: [400, 404] })
  get(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof WebhookParams>) {
    return this.webhooks.get(p.tenantId, id);
  }

  @Patch(':id')
  @RequireScope('webhooks:write')
  @Endpoint({
    summary: "Change an endpoint's url, events, description, or enable/disable it",
    tags,
    params: WebhookParams,
    body: UpdateWebhookBody,
    response: WebhookSchema,
    errors: [400, 404],
  })
  update(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof WebhookParams>,
    @Body() body: z.infer<typeof UpdateWebhookBody>,
  ) {
    return this.webhooks.update(actorOf(p), p.tenantId, id, body);
  }

  @Delete(':id')
  @RequireScope('webhooks:write')
  @Endpoint({
    summary: 'Delete a webhook endpoint (its pending deliveries are dropped)',
    tags,
    params: WebhookParams,
    response: WebhookSchema.extend({ deleted: z.literal(true) }),
    errors: [400, 404],
  })
  delete(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof WebhookParams>) {
    return this.webhooks.delete(actorOf(p), p.tenantId, id);
  }

  @IdempotentPost(':id/rotate-secret')
  @RequireScope('webhooks:write')
  @Endpoint({
    summary: 'Rotate the signing secret (the previous one keeps signing for a grace period)',
    description: SECRET_REPLAY,
    tags,
    params: WebhookParams,
    response: WebhookWithSecretSchema,
    status: 200,
    errors: [400, 404],
  })
  rotate(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof WebhookParams>) {
    return this.webhooks.rotate(actorOf(p), p.tenantId, id);
  }

  @Get(':id/deliveries')
  @RequireScope('webhooks:read')
  @Endpoint({
    summary: "An endpoint's messages, newest first, each with every attempt",
    tags,
    params: WebhookParams,
    query: PageQuery,
    response: listOf(DeliverySchema),
    errors: [400, 404],
  })
  deliveries(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof WebhookParams>,
    @Query() query: z.infer<typeof PageQuery>,
  ) {
    return this.webhooks.deliveries(p.tenantId, id, query);
  }

  @IdempotentPost(':id/deliveries/:message_id/redeliver')
  @RequireScope('webhooks:write')
  @Endpoint({
    summary: 'Send a message again (same webhook-id)',
    tags,
    params: MessageParams,
    response: DeliverySchema,
    status: 202,
    errors: [400, 404],
  })
  redeliver(@CurrentTenant() p: TenantPrincipal, @Param() m: z.infer<typeof MessageParams>) {
    return this.webhooks.redeliver(actorOf(p), p.tenantId, m.id, m.message_id);
  }
}
