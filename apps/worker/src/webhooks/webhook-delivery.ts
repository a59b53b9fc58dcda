import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, OUTBOX_CHANNEL, type WebhookEndpoint, type WebhookMessage, WebhookRepository } from '@app/db';
import { bullConnection, bullPrefix, ClusterMetrics, createRedis, WEBHOOKS_QUEUE, type WebhookOutcome } from '@app/queue';
import { closeDeliveryAgents, decryptSecret, deliver, encryptSecret, headersFor, newSecret, nextDelayMs } from '@app/webhooks';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { type Job as BullJob, DelayedError, Queue, Worker } from 'bullmq';
import pg from 'pg';

/** The relay looks at the outbox at least this often (a NOTIFY at commit usually wakes it first). */
const RELAY_INTERVAL_MS = 1_000;
/** Messages handed to the queue per relay transaction. */
const RELAY_BATCH = 200;
/** A `queued` message this overdue has been lost by the queue (Redis restarted empty): handed over again. */
const RELAY_OVERDUE_MS = 60_000;

interface DeliveryJob {
  messageId: string;
}

/**
 * Webhook delivery, in every worker (docs/webhooks.md):
 * - the **relay** moves outbox messages (written in the transactions that caused them) into the
 *   BullMQ `webhooks` queue, under their own ids, when PostgreSQL NOTIFYs a commit and every
 *   second; rows are claimed with SKIP LOCKED, so several workers relay without overlap, and a
 *   message is marked queued only after the queue took it (a crash in between re-adds it, which
 *   BullMQ ignores for an id it holds);
 * - the **deliverer** (a BullMQ Worker, WEBHOOK_CONCURRENCY at once) signs and posts each message
 *   (libs/webhooks: SSRF guard again at send time, pinned address, no redirects, timeout), logs the
 *   attempt, and decides: 2xx done; 410 disables the endpoint; otherwise the next delay of the
 *   schedule (or the receiver's Retry-After if longer), the job moved to delayed under the same id
 *   (so the same `webhook-id`), until the schedule is spent and the message is failed.
 */
@Injectable()
export class WebhookDelivery implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('webhooks');
  private readonly repo: WebhookRepository;
  private queue!: Queue<DeliveryJob>;
  private worker!: Worker<DeliveryJob>;
  private listener: pg.Client | null = null;
  private timer: NodeJS.Timeout | undefined;
  private relaying = false;
  private relayAgain = false;
  private stopping = false;
  private metrics: ClusterMetrics | null = null;
  private redis: ReturnType<typeof createRedis> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    db: Database,
  ) {
    this.repo = new WebhookRepository(db);
  }

  onApplicationBootstrap(): void {
    this.redis = createRedis(this.config, 'command', 'worker-webhooks');
    this.metrics = new ClusterMetrics(this.config, this.redis);
    // The relay's adds, like the deliverer's fetches, wait for Redis to come back.
    const connection = bullConnection(this.config, 'blocking');
    this.queue = new Queue<DeliveryJob>(WEBHOOKS_QUEUE, { connection, prefix: bullPrefix(this.config, WEBHOOKS_QUEUE) });
    this.queue.on('error', () => undefined);
    this.worker = new Worker<DeliveryJob>(WEBHOOKS_QUEUE, (job, token) => this.deliver(job, token), {
      connection,
      prefix: bullPrefix(this.config, WEBHOOKS_QUEUE),
      name: this.config.instanceId,
      concurrency: this.config.webhookConcurrency,
      // An attempt lasts at most WEBHOOK_TIMEOUT_MS; the lock must outlive it.
      lockDuration: Math.max(this.config.workerLockDurationMs, this.config.webhookTimeoutMs + 5_000),
      // A worker killed mid-attempt: its message is picked up again by another (same id, same webhook-id).
      stalledInterval: this.config.workerStalledIntervalMs,
      maxStalledCount: this.config.workerMaxStalledCount,
    });
    this.worker.on('error', (err) => this.log.warn(`queue ${WEBHOOKS_QUEUE}: ${err.message}`));
    this.timer = setInterval(() => void this.relay(), RELAY_INTERVAL_MS);
    void this.listen();
    void this.relay();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.worker?.close().catch(() => undefined);
    await this.queue?.close().catch(() => undefined);
    await this.listener?.end().catch(() => undefined);
    await this.redis?.quit().catch(() => this.redis?.disconnect());
    closeDeliveryAgents();
  }

  /** LISTEN for commits that wrote outbox messages; reconnects after a second if the connection drops. */
  private async listen(): Promise<void> {
    if (this.stopping) return;
    const client = new pg.Client({ connectionString: this.config.databaseUrl });
    const retry = () => {
      if (this.listener === client) this.listener = null;
      client.end().catch(() => undefined);
      if (!this.stopping) setTimeout(() => void this.listen(), 1_000).unref();
    };
    client.on('error', retry);
    client.on('notification', () => void this.relay());
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
      this.listener = client;
    } catch {
      retry();
    }
  }

  /** Hands due messages to the queue, batch after batch; one pass at a time, another right after if asked meanwhile. */
  async relay(): Promise<void> {
    if (this.stopping) return;
    if (this.relaying) {
      this.relayAgain = true;
      return;
    }
    this.relaying = true;
    try {
      do {
        this.relayAgain = false;
        const n = await this.repo.relay(RELAY_BATCH, RELAY_OVERDUE_MS, async (ids) => {
          await this.queue.addBulk(
            ids.map((messageId) => ({
              name: 'deliver',
              data: { messageId },
              opts: { jobId: messageId, removeOnComplete: true, removeOnFail: true },
            })),
          );
        });
        if (n === RELAY_BATCH) this.relayAgain = true;
      } while (this.relayAgain && !this.stopping);
    } catch (err) {
      this.log.warn(`outbox relay: ${(err as Error).message}`);
    } finally {
      this.relaying = false;
    }
  }

  /** One attempt of one message. */
  private async deliver(job: BullJob<DeliveryJob>, token: string | undefined): Promise<void> {
    const message = await this.repo.message(job.data.messageId);
    if (!message || message.status === 'succeeded' || message.status === 'failed') return;
    const target = await this.target(message);
    if ('reason' in target) {
      await this.repo.fail(message.id, target.reason);
      return;
    }
    const body = JSON.stringify(message.payload);
    const headers = headersFor({ id: message.id, timestamp: Math.floor(Date.now() / 1000), body, secrets: target.secrets });
    const r = await deliver({
      url: target.url,
      headers,
      body,
      timeoutMs: this.config.webhookTimeoutMs,
      allowedHosts: this.config.webhookAllowedHosts,
    });
    const attempt = { statusCode: r.statusCode, error: r.error, durationMs: r.durationMs };
    if (r.ok) {
      await this.repo.recordAttempt(message.id, attempt, { status: 'succeeded' });
      this.count('succeeded');
      return;
    }
    if (r.statusCode === 410) {
      await this.repo.recordAttempt(message.id, attempt, { status: 'failed' });
      this.count('gone');
      if (message.endpointId) {
        await this.repo.disable(message.endpointId, 'gone');
        this.log.log(`endpoint ${message.endpointId} answered 410 Gone: disabled`);
      }
      return;
    }
    const delay = nextDelayMs(this.config.webhookRetrySchedule, message.attempts + 1);
    if (delay === null) {
      await this.repo.recordAttempt(message.id, attempt, { status: 'failed' });
      this.count('failed');
      return;
    }
    this.count('retried');
    // The receiver's Retry-After wins when it asks for longer than the schedule.
    const wait = Math.max(delay, r.retryAfterMs ?? 0);
    await this.repo.recordAttempt(message.id, attempt, { status: 'queued', nextAttemptAt: new Date(Date.now() + wait) });
    await job.moveToDelayed(Date.now() + wait, token);
    throw new DelayedError();
  }

  private count(outcome: WebhookOutcome): void {
    this.metrics?.webhookAttempt(outcome).catch(() => undefined);
  }

  /** Where the message goes and the secrets that sign it, or why it cannot go anywhere. */
  private async target(
    m: WebhookMessage & { endpoint: WebhookEndpoint | null },
  ): Promise<{ url: string; secrets: string[] } | { reason: string }> {
    const key = this.config.webhookSecretKey;
    if (m.endpointId) {
      const e = m.endpoint;
      if (!e) return { reason: 'the endpoint was deleted' };
      if (!e.enabled) return { reason: `the endpoint is disabled${e.disabledReason ? ` (${e.disabledReason})` : ''}` };
      const secrets = [decryptSecret(e.secret, key)];
      // During a rotation both secrets sign, so receivers holding either one verify.
      if (e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > new Date())
        secrets.push(decryptSecret(e.previousSecret, key));
      return { url: e.url, secrets };
    }
    if (!m.url) return { reason: 'the message has no destination' };
    const stored = await this.repo.defaultSecret(m.tenantId, () => encryptSecret(newSecret(), key));
    return { url: m.url, secrets: [decryptSecret(stored, key)] };
  }
}
