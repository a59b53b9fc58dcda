import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  AdminKeyRepository,
  ApiKeyRepository,
  AuditRepository,
  Database,
  DatasetRepository,
  FileRepository,
  JobRepository,
  ModelRegistry,
  TenantRepository,
  UsageRepository,
  WebhookRepository,
} from '@app/db';
import { createRedis, type RedisClient } from '@app/queue';
import { Global, Inject, Injectable, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';

export const REDIS = Symbol('REDIS');
export const REDIS_SUBSCRIBER = Symbol('REDIS_SUBSCRIBER');

/** Waits (briefly) for the Redis connections at boot and closes everything on shutdown. */
@Injectable()
class InfraLifecycle implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('infra');
  constructor(
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_SUBSCRIBER) private readonly subscriber: RedisClient,
  ) {}

  async onModuleInit(): Promise<void> {
    const ready = new Promise<void>((resolve) => {
      if (this.redis.status === 'ready') resolve();
      else this.redis.once('ready', () => resolve());
    });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 3_000).unref());
    if ((await Promise.race([ready, timeout])) === 'timeout') {
      this.logger.warn('Redis is not answering yet; /readyz will say so until it does');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.subscriber.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.db.close();
  }
}

const repositories = [
  TenantRepository,
  ApiKeyRepository,
  AdminKeyRepository,
  AuditRepository,
  UsageRepository,
  DatasetRepository,
  FileRepository,
  JobRepository,
  WebhookRepository,
];

/** The process's connections, made once: PostgreSQL (Prisma and pg share a pool) and Redis. */
@Global()
@Module({})
export class InfraModule {
  static forRoot(config: AppConfig) {
    return {
      module: InfraModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        {
          provide: Database,
          useFactory: () => new Database(config.databaseUrl, config.databasePoolSize, config.databaseIdleInTransactionMs),
        },
        { provide: REDIS, useFactory: () => createRedis(config, 'command', 'api') },
        { provide: REDIS_SUBSCRIBER, useFactory: () => createRedis(config, 'subscriber', 'api') },
        ...repositories.map((R) => ({ provide: R, useFactory: (db: Database) => new R(db), inject: [Database] })),
        {
          provide: ModelRegistry,
          useFactory: (db: Database, audit: AuditRepository) => new ModelRegistry(db, audit),
          inject: [Database, AuditRepository],
        },
        InfraLifecycle,
      ],
      exports: [APP_CONFIG, Database, REDIS, REDIS_SUBSCRIBER, ...repositories, ModelRegistry],
    };
  }
}
