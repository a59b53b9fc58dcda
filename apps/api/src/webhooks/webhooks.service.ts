import { ApiError, newId, type Quotas } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { AuditRepository, Database, type PageQuery, toPage, type WebhookEndpoint, WebhookRepository } from '@app/db';
import { bullConnection, bullPrefix, WEBHOOKS_QUEUE } from '@app/queue';
import { decryptSecret, encryptSecret, newSecret } from '@app/webhooks';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { z } from 'zod';
import type { Actor } from '../http/actor.js';
import { type CreateWebhookBody, deliveryView, type UpdateWebhookBody, webhookView } from './webhooks.dto.js';
import { checkWebhookUrl } from './webhook-url.js';

/**
 * Webhook endpoints of a tenant (API.md, "Webhooks"). Secrets are generated here, shown once, and
 * stored encrypted with WEBHOOK_SECRET_KEY; a URL is checked against the private-address guard
 * when it is registered or changed (and again by the worker at each delivery). Every change is in
 * the audit log, in its own transaction. Deliveries are written by the outbox (libs/db
 * writeOutbox) and sent by the workers (apps/worker/src/webhooks).
 */
@Injectable()
export class WebhooksService implements OnApplicationShutdown {
  private queue: Queue | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly webhooks: WebhookRepository,
    private readonly audit: AuditRepository,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queue?.close().catch(() => undefined);
  }

  async create(actor: Actor, tenantId: string, body: z.infer<typeof CreateWebhookBody>, quotas: Pick<Quotas, 'max_webhook_endpoints'>) {
    const url = await this.checkUrl(body.url);
    const secret = newSecret();
    const endpoint = await this.db.prisma.$transaction(async (tx) => {
      // The tenant row's lock makes the count and the insert one step for concurrent registrations.
      await tx.$queryRaw`SELECT 1 FROM tenants WHERE id = ${tenantId} FOR UPDATE`;
      const count = await tx.webhookEndpoint.count({ where: { tenantId } });
      if (count >= quotas.max_webhook_endpoints) {
        throw new ApiError(
          403,
          'quota_exceeded_error',
          'max_webhook_endpoints',
          `The tenant has ${count} webhook endpoints, its max_webhook_endpoints; delete one first`,
        );
      }
      const created = await tx.webhookEndpoint.create({
        data: {
          id: newId('whe'),
          tenantId,
          url,
          description: body.description ?? null,
          events: [...new Set(body.events ?? [])],
          secret: this.encrypt(secret),
        },
      });
      await this.audit.record(tx, {
        ...actor,
        tenantId,
        action: 'webhook.created',
        targetType: 'webhook_endpoint',
        targetId: created.id,
        data: { url, events: created.events },
      });
      return created;
    });
    return { ...webhookView(endpoint), secret };
  }

  async list(tenantId: string, query: PageQuery) {
    return toPage(await this.webhooks.list(tenantId, query), query.limit, webhookView);
  }

  async get(tenantId: string, id: string) {
    return webhookView(await this.endpoint(tenantId, id));
  }

  async update(actor: Actor, tenantId: string, id: string, body: z.infer<typeof UpdateWebhookBody>) {
    await this.endpoint(tenantId, id);
    const url = body.url === undefined ? undefined : await this.checkUrl(body.url);
    const updated = await this.db.prisma.$transaction(async (tx) => {
      const { count } = await tx.webhookEndpoint.updateMany({
        where: { id, tenantId },
        data: {
          ...(url !== undefined ? { url } : {}),
          ...(body.events !== undefined ? { events: [...new Set(body.events)] } : {}),
          ...(body.description !== undefined ? { description: body.description } : {}),
          // Enabling (again) clears the reason the service disabled it for.
          ...(body.enabled !== undefined ? { enabled: body.enabled, disabledReason: null } : {}),
        },
      });
      if (count === 0) throw ApiError.notFound('webhook endpoint', id);
      await this.audit.record(tx, {
        ...actor,
        tenantId,
        action: 'webhook.updated',
        targetType: 'webhook_endpoint',
        targetId: id,
        data: { ...body },
      });
      return (await tx.webhookEndpoint.findUnique({ where: { id } }))!;
    });
    return webhookView(updated);
  }

  async delete(actor: Actor, tenantId: string, id: string) {
    const endpoint = await this.endpoint(tenantId, id);
    await this.db.prisma.$transaction(async (tx) => {
      const { count } = await tx.webhookEndpoint.deleteMany({ where: { id, tenantId } });
      if (count === 0) throw ApiError.notFound('webhook endpoint', id);
      await this.audit.record(tx, {
        ...actor,
        tenantId,
        action: 'webhook.deleted',
        targetType: 'webhook_endpoint',
        targetId: id,
        data: { url: endpoint.url },
      });
    });
    return { ...webhookView(endpoint), deleted: true as const };
  }

  /**
   * A new secret, shown once. The old one keeps signing (both signatures are sent) for
   * WEBHOOK_SECRET_GRACE_MS, so receivers can switch without missing a delivery.
   */
  async rotate(actor: Actor, tenantId: string, id: string) {
    const endpoint = await this.endpoint(tenantId, id);
    const secret = newSecret();
    const updated = await this.db.prisma.$transaction(async (tx) => {
      const { count } = await tx.webhookEndpoint.updateMany({
        where: { id, tenantId },
        data: {
          secret: this.encrypt(secret),
          previousSecret: endpoint.secret,
          previousSecretExpiresAt: new Date(Date.now() + this.config.webhookSecretGraceMs),
        },
      });
      // Deleted since it was read (a concurrent DELETE): a 404, where the view of a missing row was a 500 (found by the fuzz pass).
      if (count === 0) throw ApiError.notFound('webhook endpoint', id);
      await this.audit.record(tx, { ...actor, tenantId, action: 'webhook.secret_rotated', targetType: 'webhook_endpoint', targetId: id });
      return (await tx.webhookEndpoint.findUnique({ where: { id } }))!;
    });
    return { ...webhookView(updated), secret };
  }

  async defaultSecret(tenantId: string) {
    const stored = await this.webhooks.defaultSecret(tenantId, () => this.encrypt(newSecret()));
    return { key: decryptSecret(stored, this.config.webhookSecretKey) };
  }

  async deliveries(tenantId: string, id: string, query: PageQuery) {
    await this.endpoint(tenantId, id);
    return toPage(await this.webhooks.messages(id, query), query.limit, deliveryView);
  }

  /** Sends a message again, under the same webhook-id. */
  async redeliver(actor: Actor, tenantId: string, id: string, messageId: string) {
    await this.endpoint(tenantId, id);
    // A finished message has left the queue (jobs are removed when they end); one still retrying is brought forward.
    const queue = (this.queue ??= new Queue(WEBHOOKS_QUEUE, {
      connection: bullConnection(this.config, 'command'),
      prefix: bullPrefix(this.config, WEBHOOKS_QUEUE),
      skipWaitingForReady: true,
    }));
    const message = await this.webhooks.redeliver(id, messageId);
    if (!message) throw ApiError.notFound('webhook delivery', messageId, 'message_id');
    const held = await queue.getJob(messageId).catch(() => undefined);
    if (held && (await held.isDelayed())) await held.promote().catch(() => undefined);
    await this.db.prisma.$transaction((tx) =>
      this.audit.record(tx, {
        ...actor,
        tenantId,
        action: 'webhook.redelivered',
        targetType: 'webhook_message',
        targetId: messageId,
        data: { endpoint_id: id },
      }),
    );
    return deliveryView(message);
  }

  private async endpoint(tenantId: string, id: string): Promise<WebhookEndpoint> {
    const endpoint = await this.webhooks.get(tenantId, id);
    if (!endpoint) throw ApiError.notFound('webhook endpoint', id);
    return endpoint;
  }

  private checkUrl(raw: string): Promise<string> {
    return checkWebhookUrl(raw, this.config.webhookAllowedHosts, 'url');
  }

  private encrypt(secret: string): string {
    return encryptSecret(secret, this.config.webhookSecretKey);
  }
}
