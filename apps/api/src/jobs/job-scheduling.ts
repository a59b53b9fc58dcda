import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { JobLifecycle, RedisJobEffects, SchedulerQueues } from '@app/jobs';
import { ALL_QUEUES, JobQueues, Scheduler, schedulerLeaseMs, type RedisClient } from '@app/queue';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { REDIS } from '../infra/infra.module.js';
import { UsageCache } from '../me/usage-cache.js';

/**
 * The API's side of the job core, made once: the lifecycle (every change of a job's status the
 * API makes: cancel, admin retry), the fair scheduler and the BullMQ queues it hands jobs to.
 * JobsService and OperationsService both use it; neither reaches into the other.
 */
@Injectable()
export class JobScheduling implements OnApplicationShutdown {
  private readonly log = new Logger('jobs');
  readonly scheduler: Scheduler;
  readonly queues: JobQueues;
  readonly port: SchedulerQueues;
  readonly lifecycle: JobLifecycle;

  constructor(@Inject(APP_CONFIG) config: AppConfig, db: Database, @Inject(REDIS) redis: RedisClient, usage: UsageCache) {
    this.queues = new JobQueues(config);
    this.scheduler = new Scheduler(config, redis, schedulerLeaseMs(config), ALL_QUEUES);
    this.port = new SchedulerQueues(config, db, redis, this.scheduler, this.queues);
    const effects = new RedisJobEffects(
      config,
      redis,
      (m) => this.log.warn(m),
      undefined,
      (tenantId) => void usage.changed(tenantId),
    );
    this.lifecycle = new JobLifecycle(db, effects, this.port);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
  }
}
