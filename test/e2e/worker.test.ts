/**
 * The worker side of the job engine, end to end with real processes: worker processes (dist/),
 * their TF.js child processes (wasm), PostgreSQL, Redis and BullMQ. Jobs are created the way the
 * API creates them (AdmissionRepository.admit, then JobQueues.enqueue) and watched through the job
 * rows, the event table and the events published on each job's channel.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '@app/config';
import {
  AdmissionRepository,
  AuditRepository,
  Database,
  encodeAdmission,
  type Job,
  JobRepository,
  ModelRegistry,
  type NewJob,
  TenantRepository,
} from '@app/db';
import { jobCancelChannel, jobEventsChannel, JobQueues, queueName } from '@app/queue';
import { Redis } from 'ioredis';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { sleep, until } from '../support/factories.js';
import { type RunningProcess, startWorker } from '../support/processes.js';

/** Quotas out of the way: these tests are about the worker, not admission. */
const NO_LIMITS = { maxQueuedJobs: Number.MAX_SAFE_INTEGER, monthlyComputeSeconds: Number.MAX_VALUE };

const config = loadConfig();
let db: Database;
let jobs: JobRepository;
let registry: ModelRegistry;
let queues: JobQueues;
let redis: Redis;
let sub: Redis;
let tenantId: string;
let small: string; // 200 rows
let large: string; // 2,000 rows: long trainings
const published = new Map<string, Array<{ type: string; seq: number; data: Record<string, unknown> }>>();
const workers: RunningProcess[] = [];

/** Fast-moving settings so that stalls, reconciliation and shutdowns happen within seconds. */
const FAST = {
  TF_BACKEND: 'wasm',
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  WORKER_HEARTBEAT_MS: '500',
  WORKER_RECONCILE_INTERVAL_MS: '1000',
  WORKER_RECONCILE_AGE_MS: '3000',
  LOG_LEVEL: 'warn',
};

async function worker(env: Record<string, string> = {}) {
  const w = await startWorker({ ...FAST, ...env });
  workers.push(w);
  return w;
}

async function stopAll() {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
}

async function dataset(name: string, n: number): Promise<string> {
  const { DatasetRepository, DatasetSpool } = await import('@app/db');
  const spool = new DatasetSpool();
  for (const row of blobRows(n, { features: 4, classes: 3, seed: 3 })) await spool.append(row as Record<string, number | string>);
  const meta = { name, task: 'classification', label: 'label', textField: null, format: 'json' } as const;
  const ds = await new DatasetRepository(db).store(
    tenantId,
    meta,
    spool,
    { rows: n, columns: [], bytes: 1000, sha256: 'x' },
    Number.MAX_SAFE_INTEGER,
  );
  return ds!.id;
}

async function model(name: string): Promise<string> {
  return (await registry.create(tenantId, 'key_test', { name, task: 'classification' })).id;
}

/** Creates and enqueues a job as the API does (row and `job.queued` in one transaction, then the queue). */
async function submit(data: NewJob, enqueue = true): Promise<Job> {
  const [admitted] = await new AdmissionRepository(db).admit([encodeAdmission(tenantId, data, NO_LIMITS)]);
  const job = admitted.job!;
  published.set(job.id, []);
  await sub.subscribe(jobEventsChannel(config, job.id));
  if (enqueue) await queues.enqueue(job);
  return job;
}

async function waitFor(jobId: string, until: (j: Job) => boolean, timeoutMs = 30_000): Promise<Job> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const j = (await jobs.byId(jobId))!;
    if (until(j)) return j;
    if (Date.now() > end)
      throw new Error(
        `job ${jobId} still ${j.status} after ${timeoutMs} ms: ${JSON.stringify({ attempts: j.attempts, error: j.error, progress: j.progress })}`,
      );
    await sleep(50);
  }
}
const finished = (j: Job) => j.status === 'succeeded' || j.status === 'failed' || j.status === 'canceled';

async function eventTypes(jobId: string): Promise<string[]> {
  return (await jobs.events(jobId)).map((e) => e.type);
}

beforeAll(async () => {
  db = new Database(config.databaseUrl, 4);
  jobs = new JobRepository(db);
  registry = new ModelRegistry(db, new AuditRepository(db));
  queues = new JobQueues(config);
  redis = new Redis(config.redisUrl);
  sub = new Redis(config.redisUrl);
  sub.on('message', (_channel: string, message: string) => {
    const e = JSON.parse(message) as { job_id: string; type: string; seq: number; data: Record<string, unknown> };
    published.get(e.job_id)?.push({ type: e.type, seq: e.seq, data: e.data });
  });
  const tenant = await db.prisma.$transaction((tx) => new TenantRepository(db).create(tx, { name: 'workers', plan: 'free', quotas: {} }));
  tenantId = tenant.id;
  small = await dataset('small', 200);
  large = await dataset('large', 2_000);
});

afterEach(stopAll);

afterAll(async () => {
  await stopAll();
  await queues?.close();
  sub?.disconnect();
  redis?.disconnect();
  await db?.close();
});

describe('worker', () => {
  it('trains a version (events in order, published), then evaluates and infers with it, paging a large output', async () => {
    const w = await worker({ JOB_OUTPUT_PAGE_SIZE: '50' });
    expect(w.ready).toMatchObject({ backend: 'wasm', gpu: false, queues: ['training', 'evaluation', 'inference', 'predict'] });
    const modelId = await model('flow');
    const job = await submit({ type: 'training', modelId, datasetId: small, hyperparameters: { epochs: 4, seed: 1 } });
    const done = await waitFor(job.id, finished);
    expect(done).toMatchObject({ status: 'succeeded', version: 1, attempts: 1, workerId: w.ready.id, backend: 'wasm' });
    expect(done.result).toMatchObject({ version: 1, metrics: { accuracy: expect.any(Number) } });
    expect(done.computeSeconds).toBeGreaterThan(0);
    expect(done.progress).toMatchObject({ percent: 100, epoch: 4, epochs: 4 });

    const events = await jobs.events(job.id);
    expect(events.map((e) => e.type)).toEqual([
      'job.queued',
      'job.started',
      'job.progress',
      'job.progress',
      'job.progress',
      'job.progress',
      'job.succeeded',
    ]);
    expect(events[1].data).toEqual({ attempt: 1, worker_id: w.ready.id, backend: 'wasm' });
    expect(events.slice(2, 6).map((e) => (e.data as { epoch: number }).epoch)).toEqual([1, 2, 3, 4]);
    expect(events[2].data).toMatchObject({
      epochs: 4,
      loss: expect.any(Number),
      val_loss: expect.any(Number),
      accuracy: expect.any(Number),
      val_accuracy: expect.any(Number),
      eta_seconds: expect.any(Number),
    });
    // Every event after job.queued (the API's) was published after it committed, in order.
    await until('every event published', () => (published.get(job.id)?.length ?? 0) >= events.length - 1);
    expect(published.get(job.id)!.map((e) => e.seq)).toEqual(events.slice(1).map((e) => Number(e.seq)));

    const versions = await db.prisma.modelVersion.findMany({ where: { modelId } });
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({ trainingJobId: job.id, datasetId: small, backend: 'wasm', number: 1 });
    const usage = await db.prisma.usageCounter.findMany({ where: { tenantId, metric: 'compute_seconds' } });
    expect(usage.reduce((s, u) => s + Number(u.value), 0)).toBeGreaterThanOrEqual(1);

    const evaluation = await submit({ type: 'evaluation', modelId, alias: 'latest', datasetId: small });
    const evaluated = await waitFor(evaluation.id, finished);
    expect(evaluated).toMatchObject({ status: 'succeeded', version: 1 });
    expect(evaluated.result).toMatchObject({
      version: 1,
      metrics: { accuracy: expect.any(Number), macro_f1: expect.any(Number), confusion_matrix: expect.any(Object) },
    });

    const inputs = blobRows(3, { features: 4, classes: 3, seed: 3 }).map(({ label: _label, ...x }) => x);
    const inference = await submit({ type: 'inference', modelId, version: 1, inputs, explain: true });
    const inferred = await waitFor(inference.id, finished);
    expect(inferred.status).toBe('succeeded');
    const r = inferred.result as { predictions: Array<{ label: string; version: number }>; explanations: unknown[] };
    expect(r.predictions).toHaveLength(3);
    expect(r.predictions[0]).toMatchObject({ label: expect.stringMatching(/^class_/), probabilities: expect.any(Object), version: 1 });
    expect(r.explanations).toHaveLength(3);

    const bulk = await submit({ type: 'inference', modelId, datasetId: small });
    const bulkDone = await waitFor(bulk.id, finished);
    const br = bulkDone.result as { predictions: unknown[]; total: number; output: { pages: number; page_size: number } };
    expect(br.predictions).toHaveLength(50);
    expect(br).toMatchObject({ total: 200, output: { pages: 4, page_size: 50 } });
    const last = await jobs.outputPage(tenantId, bulk.id, 3);
    expect(last!.pages).toBe(4);
    expect((last!.data as { predictions: unknown[] }).predictions).toHaveLength(50);
    expect(await jobs.outputPage('ten_other', bulk.id, 0)).toBeNull();
  });

  it('fails bad input at once with a clear error code, without retrying', async () => {
    await worker();
    const modelId = await model('bad');
    const noData = await submit({ type: 'training', modelId, datasetId: 'ds_missing', hyperparameters: { epochs: 1 } });
    const conv = await submit({
      type: 'training',
      modelId,
      datasetId: small,
      architecture: {
        class_name: 'Sequential',
        config: { layers: [{ class_name: 'Conv2D', config: { filters: 2, kernel_size: 3, batch_input_shape: [null, 4] } }] },
      },
    });
    const noVersion = await submit({ type: 'evaluation', modelId, version: 7, datasetId: small });
    for (const [job, code] of [
      [noData, 'dataset_not_found'],
      [conv, 'architecture_not_allowed'],
      [noVersion, 'version_not_found'],
    ] as const) {
      const done = await waitFor(job.id, finished);
      expect(done).toMatchObject({ status: 'failed', attempts: 1, error: { code } });
      expect(await eventTypes(job.id)).toEqual(['job.queued', 'job.started', 'job.failed']);
    }
  });

  it('cancels a running training within two seconds, and a job flagged before pickup never runs', async () => {
    await worker();
    const modelId = await model('cancel');
    const job = await submit({ type: 'training', modelId, datasetId: large, hyperparameters: { epochs: 500, seed: 1 } });
    await waitFor(job.id, (j) => (j.progress as { epoch?: number }).epoch !== undefined);
    const asked = Date.now();
    await flagCancel(job.id);
    await redis.publish(jobCancelChannel(config), job.id);
    const done = await waitFor(job.id, finished, 5_000);
    const took = Date.now() - asked;
    expect(done.status).toBe('canceled');
    expect(took).toBeLessThan(2_000);
    expect((await eventTypes(job.id)).at(-1)).toBe('job.canceled');
    expect(await db.prisma.modelVersion.count({ where: { modelId } })).toBe(0);

    const flagged = await submit({ type: 'training', modelId, datasetId: small }, false);
    await flagCancel(flagged.id);
    await queues.enqueue(flagged);
    const f = await waitFor(flagged.id, finished);
    expect(f).toMatchObject({ status: 'canceled', attempts: 0 });
    expect(await eventTypes(flagged.id)).toEqual(['job.queued', 'job.canceled']);
  });

  it('runs a training longer than the lock duration without a stall', async () => {
    await worker();
    const modelId = await model('long');
    const job = await submit({ type: 'training', modelId, datasetId: large, hyperparameters: { epochs: 200, seed: 2 } });
    const done = await waitFor(job.id, finished, 60_000);
    expect(done.status).toBe('succeeded');
    expect(done.finishedAt!.getTime() - done.startedAt!.getTime()).toBeGreaterThan(2 * Number(FAST.WORKER_LOCK_DURATION_MS));
    expect(done.attempts).toBe(1);
    expect((await eventTypes(job.id)).filter((t) => t === 'job.started')).toHaveLength(1);
  });

  it('hands the job of a SIGKILLed worker to another, which finishes it with exactly one version', async () => {
    // Both workers up before the job exists: whichever takes it is killed mid-training (a worker started after the
    // first epoch could come up only once a fast training has ended).
    const [one, two] = await Promise.all([worker(), worker()]);
    const modelId = await model('killed');
    const job = await submit({ type: 'training', modelId, datasetId: large, hyperparameters: { epochs: 12, seed: 3 } });
    const running = await waitFor(job.id, (j) => (j.progress as { epoch?: number }).epoch !== undefined);
    const [a, b] = running.workerId === one.ready.id ? [one, two] : [two, one];
    expect(running.workerId).toBe(a.ready.id);
    await a.stop('SIGKILL');
    const done = await waitFor(job.id, finished, 60_000);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2, workerId: b.ready.id, version: 1 });
    const started = (await jobs.events(job.id))
      .filter((e) => e.type === 'job.started')
      .map((e) => (e.data as { worker_id: string }).worker_id);
    expect(started).toEqual([a.ready.id, b.ready.id]);
    expect(await db.prisma.modelVersion.count({ where: { modelId } })).toBe(1);
  });

  it('retries a transient failure (its compute process killed) with backoff and a job.retrying event', async () => {
    const w = await worker();
    const modelId = await model('crash');
    const job = await submit({ type: 'training', modelId, datasetId: large, hyperparameters: { epochs: 10, seed: 4 } });
    await waitFor(job.id, (j) => (j.progress as { epoch?: number }).epoch !== undefined);
    process.kill((w.ready as unknown as { children: number[] }).children[0], 'SIGKILL');
    const done = await waitFor(job.id, finished, 60_000);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    const events = await jobs.events(job.id);
    const retrying = events.find((e) => e.type === 'job.retrying')!;
    expect(retrying.data).toMatchObject({ attempt: 1, error: { code: 'worker_crashed' }, next_attempt_in_ms: 1000 });
    expect(events.map((e) => e.type).filter((t) => t !== 'job.progress')).toEqual([
      'job.queued',
      'job.started',
      'job.retrying',
      'job.started',
      'job.succeeded',
    ]);
    expect(await db.prisma.modelVersion.count({ where: { modelId } })).toBe(1);
  });

  it('reconciles: a queued job that no queue holds is enqueued and runs', async () => {
    await worker();
    const modelId = await model('reconciled');
    const job = await submit({ type: 'training', modelId, datasetId: small, hyperparameters: { epochs: 1 } }, false);
    expect(await queues.holds(job)).toBe(false);
    const done = await waitFor(job.id, finished, 20_000);
    expect(done.status).toBe('succeeded');
  });

  it('gives a gpu job only to a worker with a (fake) GPU', async () => {
    await worker();
    const modelId = await model('gpu');
    const job = await submit({ type: 'training', modelId, datasetId: small, accelerator: 'gpu', hyperparameters: { epochs: 1 } });
    await sleep(2_000);
    expect((await jobs.byId(job.id))!.status).toBe('queued');
    expect(await jobs.gpuWorkerOnline(5_000)).toBe(false);
    const g = await worker({ WORKER_FAKE_GPU: '1' });
    expect(g.ready).toMatchObject({ gpu: true, queues: expect.arrayContaining(['training-gpu', 'evaluation-gpu', 'inference-gpu']) });
    expect(await jobs.gpuWorkerOnline(5_000)).toBe(true);
    const done = await waitFor(job.id, finished);
    expect(done).toMatchObject({ status: 'succeeded', workerId: g.ready.id });
    expect(queueName('training', 'gpu')).toBe('training-gpu');
  });

  it('on SIGTERM finishes a short job, hands back a long one past the deadline, and exits 0', async () => {
    const a = await worker({ WORKER_SHUTDOWN_DEADLINE_MS: '1500' });
    const modelId = await model('sigterm');
    const job = await submit({ type: 'training', modelId, datasetId: large, hyperparameters: { epochs: 100, seed: 5 } });
    await waitFor(job.id, (j) => (j.progress as { epoch?: number }).epoch !== undefined);
    const t0 = Date.now();
    expect(await a.stop('SIGTERM')).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8_000);
    const back = (await jobs.byId(job.id))!;
    expect(back).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await db.prisma.workerHeartbeat.count({ where: { id: a.ready.id } })).toBe(0);
    const retrying = (await jobs.events(job.id)).find((e) => e.type === 'job.retrying')!;
    expect(retrying.data).toMatchObject({ error: { code: 'worker_shutdown' }, next_attempt_in_ms: 0 });

    // Another worker takes it from the queue; this one has time to finish its job on SIGTERM.
    const b = await worker();
    await waitFor(job.id, (j) => j.status === 'running');
    await flagCancel(job.id);
    await redis.publish(jobCancelChannel(config), job.id);
    await waitFor(job.id, finished);
    const short = await submit({ type: 'training', modelId, datasetId: large, hyperparameters: { epochs: 6, seed: 6 } });
    await waitFor(short.id, (j) => j.status === 'running');
    expect(await b.stop('SIGTERM')).toBe(0);
    expect((await jobs.byId(short.id))!).toMatchObject({ status: 'succeeded', attempts: 1 });
  });
});

/** Sets a job's cancel flag as the API does, without its queued path (a flagged job must not start). */
async function flagCancel(jobId: string): Promise<void> {
  await db.pool.query('UPDATE jobs SET cancel_requested = true, updated_at = now() WHERE id = $1', [jobId]);
}
