import { APP_CONFIG, type AppConfig } from '@app/config';
import { Database, FileRepository, JobRepository } from '@app/db';
import { JobLifecycle, RedisJobEffects, SchedulerQueues } from '@app/jobs';
import type { BackendInfo } from '@app/ml';
import {
  ALL_QUEUES,
  bullConnection,
  bullPrefix,
  ClusterMetrics,
  createRedis,
  dispatchChannel,
  JOB_TYPES,
  jobCancelChannel,
  type JobPayload,
  JobQueues,
  queueName,
  Scheduler,
  schedulerLeaseMs,
  type RedisClient,
} from '@app/queue';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { Worker } from 'bullmq';
import { ComputePool } from './compute/pool.js';
import { WorkerHeartbeat } from './heartbeat.js';
import { InferencePool } from './inference/inference-pool.js';
import { Dispatcher } from './jobs/dispatcher.js';
import { JobReader } from './jobs/job-reader.js';
import { JobRunner } from './jobs/job-runner.js';
import { EvaluationProcessor } from './jobs/processors/evaluation.js';
import { BatchPrediction } from './jobs/processors/batch-prediction.js';
import { InferenceProcessor } from './jobs/processors/inference.js';
import { TrainingProcessor } from './jobs/processors/training.js';
import { Reconciler } from './reconciler.js';
import { Slots } from './slots.js';

/** Slots of one kind, the queues that use them, and their BullMQ consumers (paused while every slot is busy). */
interface Lane {
  slots: Slots;
  queues: string[];
  workers: Worker<JobPayload>[];
  paused: boolean;
}

/** A worker with free slots asks the scheduler for work at least this often (new work also wakes it over pub/sub). */
const DISPATCH_INTERVAL_MS = 250;

/**
 * The worker's job engine, wired: BullMQ consumers of the training, evaluation and inference
 * queues (and their `-gpu` twins when the backend runs on a GPU) hand each job to the JobRunner
 * (its lifecycle through libs/jobs, its work to the queue's processor, the compute in a pool of
 * child processes); the Dispatcher feeds BullMQ from the fair scheduler; the Reconciler repairs
 * what Redis lost; cancels arrive over pub/sub; SIGTERM hands running jobs back.
 */
@Injectable()
export class JobEngine implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('jobs');
  private readonly pool: ComputePool;
  private readonly reader: JobReader;
  private readonly files: FileRepository;
  /** Compute slots (one per compute child: training, evaluation) and inference slots (inference jobs batch in the inference children). */
  private readonly lanes: Record<'compute' | 'inference', Lane>;
  private readonly workers: Worker<JobPayload>[] = [];
  private readonly queues: JobQueues;
  private redis!: RedisClient;
  private sub!: RedisClient;
  private runner!: JobRunner;
  private dispatcher!: Dispatcher;
  private reconciler!: Reconciler;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  backend: BackendInfo | null = null;
  queueNames: string[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly heartbeat: WorkerHeartbeat,
    private readonly inferencePool: InferencePool,
  ) {
    this.queues = new JobQueues(config);
    this.pool = new ComputePool({
      size: config.workerConcurrency,
      forcedBackend: config.tfBackend,
      cancelKillMs: config.workerCancelKillMs,
      onChild: (pid, backend) => process.stdout.write(`${JSON.stringify({ event: 'worker.child', pid, backend: backend.name })}\n`),
      onError: (m) => this.log.error(m),
    });
    this.reader = new JobReader(db, this.pool, config.featureCacheMaxBytes);
    this.files = new FileRepository(db);
    const lane = (size: number): Lane => {
      const l: Lane = { slots: new Slots(size, (free) => void this.throttle(l, free)), queues: [], workers: [], paused: false };
      return l;
    };
    this.lanes = { compute: lane(config.workerConcurrency), inference: lane(config.workerInferenceJobs) };
  }

  /** Starts the compute children first: the backend they load decides which queues this worker takes. */
  async onModuleInit(): Promise<void> {
    this.backend = await this.pool.start();
    const gpu = this.backend.gpu || this.config.workerFakeGpu;
    this.heartbeat.backend = this.backend.name;
    this.heartbeat.gpu = gpu;
    this.queueNames = [...JOB_TYPES.map((t) => queueName(t, null)), ...(gpu ? JOB_TYPES.map((t) => queueName(t, 'gpu')) : [])];
    for (const name of this.queueNames) this.laneOf(name).queues.push(name);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.redis = createRedis(this.config, 'command', 'worker');
    this.sub = createRedis(this.config, 'subscriber', 'worker');
    const scheduler = new Scheduler(this.config, this.redis, schedulerLeaseMs(this.config), ALL_QUEUES);
    const warn = (m: string) => this.log.warn(m);
    const scheduling = new SchedulerQueues(this.config, this.db, this.redis, scheduler, this.queues);
    const lifecycle = new JobLifecycle(
      this.db,
      new RedisJobEffects(this.config, this.redis, warn, new ClusterMetrics(this.config, this.redis)),
      scheduling,
    );
    this.runner = new JobRunner(
      this.config,
      lifecycle,
      scheduler,
      {
        training: new TrainingProcessor(this.reader, this.pool),
        evaluation: new EvaluationProcessor(this.reader, this.pool),
        inference: new InferenceProcessor(
          this.reader,
          this.inferencePool,
          this.config.jobOutputPageSize,
          new BatchPrediction(
            this.reader,
            this.files,
            this.inferencePool,
            lifecycle,
            this.config.fileRetentionSeconds,
            this.config.batchPredictionChunkRows,
          ),
        ),
      },
      () => this.backend!.name,
      this.log,
    );
    const jobs = new JobRepository(this.db);
    this.dispatcher = new Dispatcher(scheduler, this.queues, jobs, () => Object.values(this.lanes), this.log);

    const cancels = jobCancelChannel(this.config);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === cancels) this.runner.running.get(message)?.abort('cancel');
      else void this.dispatcher.dispatch();
    });
    // After a reconnect the subscription may have missed requests: ask the rows.
    this.sub.on('ready', () => void this.runner.checkCancelFlags());
    await this.sub.subscribe(cancels, dispatchChannel(this.config));

    for (const name of this.queueNames) {
      const lane = this.laneOf(name);
      const worker = new Worker<JobPayload>(name, (job, token) => this.process(lane, job, token), {
        connection: bullConnection(this.config, 'blocking'),
        prefix: bullPrefix(this.config, name),
        name: this.config.instanceId,
        concurrency: lane.slots.size,
        lockDuration: this.config.workerLockDurationMs,
        stalledInterval: this.config.workerStalledIntervalMs,
        maxStalledCount: this.config.workerMaxStalledCount,
      });
      worker.on('error', (err) => this.log.warn(`queue ${name}: ${err.message}`));
      worker.on('stalled', (jobId) =>
        this.log.warn(`job ${jobId} stalled (its worker stopped renewing the lock); handed back to the queue`),
      );
      this.workers.push(worker);
      lane.workers.push(worker);
    }

    this.reconciler = new Reconciler(this.config, jobs, lifecycle, this.queues, this.redis, this.log, scheduler, this.files);
    this.reconciler.start();
    const leaseMs = schedulerLeaseMs(this.config);
    this.timers.push(
      setInterval(() => void this.dispatcher.dispatch(), DISPATCH_INTERVAL_MS),
      setInterval(() => void this.dispatcher.renew(this.leased()), Math.max(100, Math.floor(leaseMs / 4))),
    );
    void this.dispatcher.dispatch();
  }

  private laneOf(queue: string): Lane {
    return queue.startsWith('inference') ? this.lanes.inference : this.lanes.compute;
  }

  /** One BullMQ job: a slot of its lane on this worker, then the runner. */
  private async process(lane: Lane, bull: Parameters<JobRunner['process']>[0], token?: string): Promise<unknown> {
    const release = await lane.slots.acquire();
    const jobId = bull.data.jobId;
    this.heartbeat.currentJobs.add(jobId);
    try {
      return await this.runner.process(bull, token, this.stopping);
    } finally {
      this.heartbeat.currentJobs.delete(jobId);
      release();
      void this.dispatcher.dispatch();
    }
  }

  private leased(): Array<{ tenantId: string; jobId: string }> {
    return [...this.runner.running].filter(([, r]) => r.leased).map(([jobId, r]) => ({ tenantId: r.tenantId, jobId }));
  }

  /** Current jobs, for the heartbeat and the ready line. */
  currentJobs(): string[] {
    return [...(this.runner?.running.keys() ?? [])];
  }

  pids(): number[] {
    return this.pool.pids();
  }

  /**
   * SIGTERM: take no new jobs, give running ones WORKER_SHUTDOWN_DEADLINE_MS to finish, then stop
   * them and hand them back (row → queued, BullMQ → wait) so another worker runs them.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.dispatcher) this.dispatcher.stopped = true;
    this.reconciler?.stop();
    for (const t of this.timers) clearInterval(t);
    const closing = Promise.all(this.workers.map((w) => w.close().catch((err: Error) => this.log.warn(`close: ${err.message}`))));
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      closing.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), this.config.workerShutdownDeadlineMs);
      }),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      this.log.warn(`shutdown deadline passed; handing back ${this.runner.running.size} job(s)`);
      for (const r of this.runner.running.values()) r.abort('shutdown');
      await closing;
    }
    await this.pool.close();
    await this.queues.close();
    await this.sub?.quit().catch(() => this.sub.disconnect());
    await this.redis?.quit().catch(() => this.redis.disconnect());
  }

  /** A lane whose slots are all busy stops fetching, so that idle workers take its next jobs. */
  private async throttle(lane: Lane, free: number): Promise<void> {
    if (this.stopping) return;
    if (free === 0 && !lane.paused) {
      lane.paused = true;
      await Promise.all(lane.workers.map((w) => w.pause(true).catch(() => undefined)));
    } else if (free > 0 && lane.paused) {
      lane.paused = false;
      for (const w of lane.workers) w.resume();
    }
  }
}
