import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database } from '@app/db';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { hostname } from 'node:os';

/**
 * Tells the control plane this worker lives: a row in worker_heartbeats, refreshed every
 * WORKER_HEARTBEAT_MS and removed on a clean shutdown (a crashed worker's row goes stale and
 * `GET /v1/admin/workers` stops listing it).
 */
@Injectable()
export class WorkerHeartbeat implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('heartbeat');
  private readonly startedAt = new Date();
  private timer?: NodeJS.Timeout;
  readonly currentJobs = new Set<string>();
  backend = 'none';
  /** Whether the backend runs on a GPU (or WORKER_FAKE_GPU claims one): such workers take the -gpu queues. */
  gpu = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.config.workerHeartbeatMs);
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.db.prisma.workerHeartbeat.deleteMany({ where: { id: this.config.instanceId } }).catch(() => undefined);
  }

  async beat(): Promise<void> {
    const data = {
      host: hostname(),
      pid: process.pid,
      backend: this.backend,
      gpu: this.gpu,
      concurrency: this.config.workerConcurrency,
      currentJobs: [...this.currentJobs],
      lastSeenAt: new Date(),
    };
    try {
      await this.db.prisma.workerHeartbeat.upsert({
        where: { id: this.config.instanceId },
        create: { id: this.config.instanceId, startedAt: this.startedAt, ...data },
        update: data,
      });
    } catch (err) {
      this.logger.warn(`heartbeat failed: ${(err as Error).message}`);
    }
  }
}
