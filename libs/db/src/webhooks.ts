import { newId } from '@app/common';
import type { Database } from './database.js';
import { pageArgs, type PageQuery } from './pagination.js';
import { type Job, Prisma, type WebhookAttempt, type WebhookEndpoint, type WebhookMessage } from './generated/client.js';

/** The event types a webhook endpoint can ask for (API.md, "Webhooks"). */
export const WEBHOOK_EVENT_TYPES = [
  'job.started',
  'job.progress',
  'job.succeeded',
  'job.failed',
  'job.canceled',
  'model.version.created',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** A job's own `webhook_events` name categories of events. */
const JOB_CATEGORY: Partial<Record<string, 'start' | 'progress' | 'completed'>> = {
  'job.started': 'start',
  'job.progress': 'progress',
  'job.succeeded': 'completed',
  'job.failed': 'completed',
  'job.canceled': 'completed',
};

/** At most one progress message per destination in this window; terminal events always go. */
export const PROGRESS_THROTTLE_MS = 500;

/** PostgreSQL NOTIFY channel: sent at commit by every transaction that wrote outbox messages. */
export const OUTBOX_CHANNEL = 'aiaas_webhook_outbox';

type Tx = Prisma.TransactionClient;

/**
 * Writes the webhook messages of one event, inside the transaction of the change that caused it:
 * one per enabled endpoint of the tenant that takes the event type, and one for the job's own
 * `webhook_url` when its `webhook_events` include the event's category. Progress messages are
 * dropped for a destination that got one less than PROGRESS_THROTTLE_MS ago. The body is frozen
 * here, as the API showed the object at that moment. One statement; a NOTIFY (delivered at
 * commit) wakes the outbox relay.
 */
export async function writeOutbox(tx: Tx, event: OutboxEvent): Promise<number> {
  const { text, values } = outboxStatement(event);
  const rows = await tx.$queryRawUnsafe<Array<{ n: number }>>(text, ...values);
  return rows[0]?.n ?? 0;
}

export interface OutboxEvent {
  tenantId: string;
  type: WebhookEventType;
  data: object;
  job?: Pick<Job, 'webhookUrl' | 'webhookEvents'>;
}

/**
 * writeOutbox's statement, for a caller on plain `pg` (the job lifecycle): its parameters are
 * numbered from `$<first>`, so that it can follow others in one round trip.
 */
export function outboxStatement(event: OutboxEvent, first = 1): { text: string; values: unknown[] } {
  const payload = JSON.stringify({ type: event.type, timestamp: new Date().toISOString(), data: event.data });
  const category = JOB_CATEGORY[event.type] ?? null;
  const jobUrl = event.job?.webhookUrl && category && event.job.webhookEvents.includes(category) ? event.job.webhookUrl : null;
  const [type, body, tenant, url, progress, throttle] = [0, 1, 2, 3, 4, 5].map((i) => `$${first + i}`);
  const text = `
    WITH ins AS (
      INSERT INTO webhook_messages (id, tenant_id, endpoint_id, url, event_type, payload)
      SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.tenant_id, e.id, NULL, ${type}::text, ${body}::jsonb
        FROM webhook_endpoints e
       WHERE e.tenant_id = ${tenant}::text AND e.enabled AND (cardinality(e.events) = 0 OR ${type}::text = ANY(e.events))
         AND (NOT ${progress}::boolean OR NOT EXISTS (
               SELECT 1 FROM webhook_messages m
                WHERE m.endpoint_id = e.id AND m.event_type = 'job.progress' AND m.created_at > now() - ${throttle}::interval))
      UNION ALL
      SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), ${tenant}::text, NULL, ${url}::text, ${type}::text, ${body}::jsonb
       WHERE ${url}::text IS NOT NULL
         AND (NOT ${progress}::boolean OR NOT EXISTS (
               SELECT 1 FROM webhook_messages m
                WHERE m.tenant_id = ${tenant}::text AND m.endpoint_id IS NULL AND m.url = ${url}::text
                  AND m.event_type = 'job.progress' AND m.created_at > now() - ${throttle}::interval))
      RETURNING 1
    )
    SELECT count(*)::int AS n, CASE WHEN count(*) > 0 THEN pg_notify('${OUTBOX_CHANNEL}', '')::text END AS notified FROM ins`;
  return {
    text,
    values: [event.type, payload, event.tenantId, jobUrl, event.type === 'job.progress', `${PROGRESS_THROTTLE_MS} milliseconds`],
  };
}

/** Whether a job event type produces webhook messages. */
export function isWebhookEvent(type: string): type is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(type);
}

export interface NewEndpoint {
  url: string;
  description: string | null;
  events: string[];
  /** encrypted */
  secret: string;
}

export type { WebhookAttempt, WebhookEndpoint, WebhookMessage };

export type MessageWithLog = WebhookMessage & { log: WebhookAttempt[] };

/** Endpoints, default secrets, messages and attempts. Tenant-scoped reads take the tenant first. */
export class WebhookRepository {
  constructor(private readonly db: Database) {}

  create(tenantId: string, data: NewEndpoint): Promise<WebhookEndpoint> {
    return this.db.prisma.webhookEndpoint.create({ data: { id: newId('whe'), tenantId, ...data } });
  }

  get(tenantId: string, id: string): Promise<WebhookEndpoint | null> {
    return this.db.prisma.webhookEndpoint.findFirst({ where: { id, tenantId } });
  }

  async list(tenantId: string, query: PageQuery): Promise<WebhookEndpoint[]> {
    const cursor = query.starting_after ? await this.get(tenantId, query.starting_after) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.webhookEndpoint.findMany({ ...args, where: { ...args.where, tenantId } });
  }

  /** Applies a change to the tenant's endpoint; null when it is not the tenant's. */
  async update(tenantId: string, id: string, change: Prisma.WebhookEndpointUpdateManyMutationInput): Promise<WebhookEndpoint | null> {
    const { count } = await this.db.prisma.webhookEndpoint.updateMany({ where: { id, tenantId }, data: change });
    return count === 0 ? null : this.get(tenantId, id);
  }

  async delete(tenantId: string, id: string): Promise<boolean> {
    return (await this.db.prisma.webhookEndpoint.deleteMany({ where: { id, tenantId } })).count === 1;
  }

  /** The tenant's default secret (encrypted), created with `make` the first time it is asked for. */
  async defaultSecret(tenantId: string, make: () => string): Promise<string> {
    const found = await this.db.prisma.tenantWebhookSecret.findUnique({ where: { tenantId } });
    if (found) return found.secret;
    await this.db.prisma.tenantWebhookSecret.createMany({ data: [{ tenantId, secret: make() }], skipDuplicates: true });
    return (await this.db.prisma.tenantWebhookSecret.findUnique({ where: { tenantId } }))!.secret;
  }

  /** An endpoint's messages with their attempts, newest first. */
  async messages(endpointId: string, query: PageQuery): Promise<MessageWithLog[]> {
    const cursor = query.starting_after
      ? await this.db.prisma.webhookMessage.findFirst({ where: { id: query.starting_after, endpointId } })
      : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.webhookMessage.findMany({
      ...args,
      where: { ...args.where, endpointId },
      include: { log: { orderBy: { attemptedAt: 'asc' } } },
    });
  }

  message(id: string): Promise<(WebhookMessage & { endpoint: WebhookEndpoint | null }) | null> {
    return this.db.prisma.webhookMessage.findUnique({ where: { id }, include: { endpoint: true } });
  }

  /** Queues a message again (redelivery): the same message, so the same `webhook-id`. */
  async redeliver(endpointId: string, messageId: string): Promise<MessageWithLog | null> {
    const { count } = await this.db.prisma.webhookMessage.updateMany({
      where: { id: messageId, endpointId },
      data: { status: 'pending', nextAttemptAt: new Date() },
    });
    if (count === 0) return null;
    await this.db.pool.query(`SELECT pg_notify($1, '')`, [OUTBOX_CHANNEL]);
    return this.db.prisma.webhookMessage.findUnique({ where: { id: messageId }, include: { log: { orderBy: { attemptedAt: 'asc' } } } });
  }

  /**
   * The outbox relay's claim: due `pending` messages, and `queued` ones overdue by `overdueMs`
   * (their queue entry was lost with Redis), oldest first. `handOver` adds them to the queue
   * before they are marked queued, under row locks that keep other relays off them.
   */
  async relay(limit: number, overdueMs: number, handOver: (ids: string[]) => Promise<void>): Promise<number> {
    return this.db.prisma.$transaction(async (tx) => {
      const due = await tx.$queryRaw<Array<{ id: string }>>`
        SELECT id FROM webhook_messages
         WHERE (status = 'pending' AND next_attempt_at <= now())
            OR (status = 'queued' AND next_attempt_at <= now() - make_interval(secs => ${overdueMs / 1000}))
         ORDER BY next_attempt_at
         LIMIT ${limit}
         FOR UPDATE SKIP LOCKED`;
      if (due.length === 0) return 0;
      const ids = due.map((r) => r.id);
      await handOver(ids);
      await tx.$executeRaw`UPDATE webhook_messages SET status = 'queued', updated_at = now() WHERE id = ANY(${ids})`;
      return ids.length;
    });
  }

  /** Records one attempt and its outcome on the message: one statement, so one round trip and atomic. */
  async recordAttempt(
    messageId: string,
    attempt: { statusCode: number | null; error: string | null; durationMs: number },
    outcome: { status: 'succeeded' | 'failed' | 'queued'; nextAttemptAt?: Date },
  ): Promise<void> {
    await this.db.pool.query(
      `WITH attempt AS (
         INSERT INTO webhook_attempts (id, message_id, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5)
       )
       UPDATE webhook_messages
          SET status = $6::"WebhookMessageStatus", attempts = attempts + 1, last_error = $4, updated_at = now(),
              delivered_at = CASE WHEN $6 = 'succeeded' THEN now() ELSE delivered_at END,
              next_attempt_at = coalesce($7::timestamptz, next_attempt_at)
        WHERE id = $2`,
      [newId('att'), messageId, attempt.statusCode, attempt.error, attempt.durationMs, outcome.status, outcome.nextAttemptAt ?? null],
    );
  }

  /** A message that can no longer be delivered (its endpoint gone or disabled). */
  async fail(messageId: string, reason: string): Promise<void> {
    await this.db.prisma.webhookMessage.updateMany({
      where: { id: messageId, status: { in: ['pending', 'queued'] } },
      data: { status: 'failed', lastError: reason },
    });
  }

  /** The receiver answered 410: the endpoint is disabled, as the service's own decision. */
  async disable(endpointId: string, reason: string): Promise<void> {
    await this.db.prisma.webhookEndpoint.updateMany({ where: { id: endpointId }, data: { enabled: false, disabledReason: reason } });
  }

  /** Messages waiting or failing, for the admin overview. */
  async counts(): Promise<{ pending: number; failing: number; failed: number }> {
    const { rows } = await this.db.pool.query<{ pending: number; failing: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE status IN ('pending', 'queued'))::int AS pending,
              count(*) FILTER (WHERE status IN ('pending', 'queued') AND attempts > 0)::int AS failing,
              count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM webhook_messages`,
    );
    return rows[0];
  }
}
