import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { createRedis, type RedisClient } from '@app/queue';
import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { JobEngine } from './engine.js';
import { WorkerHeartbeat } from './heartbeat.js';
import { InferencePool } from './inference/inference-pool.js';
import { FoundationLane } from './inference/foundation-lane.js';
import { InferenceLane } from './inference/lane.js';
import { LoadCheckConsumer } from './inference/load-checks.js';
import { WebhookDelivery } from './webhooks/webhook-delivery.js';

export const WORKER_REDIS = Symbol('WORKER_REDIS');

/** Connects at start (failing loudly if PostgreSQL or Redis is unreachable) and closes on shutdown. */
@Injectable()
class Connections implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly db: Database,
    @Inject(WORKER_REDIS) private readonly redis: RedisClient,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.db.ping(5_000);
    await this.redis.ping();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.db.close();
  }
}

/**
 * The worker: a Nest application context with no HTTP: the job engine and its compute children,
 * the sync inference lane and its inference children (shared with async inference jobs and the
 * load checks of imported models), webhook delivery (outbox relay and deliverer), and the heartbeat.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        // The job engine, the inference lane's bulk writes and WEBHOOK_CONCURRENCY deliveries share it.
        {
          provide: Database,
          useFactory: () => new Database(config.databaseUrl, config.databasePoolSize, config.databaseIdleInTransactionMs),
        },
        // Workers wait for Redis rather than fail (BullMQ's advice: maxRetriesPerRequest null).
        { provide: WORKER_REDIS, useFactory: () => createRedis(config, 'blocking', 'worker') },
        Connections,
        WorkerHeartbeat,
        InferencePool,
        JobEngine,
        InferenceLane,
        FoundationLane,
        LoadCheckConsumer,
        WebhookDelivery,
      ],
    };
  }
}
