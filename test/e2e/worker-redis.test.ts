/**
 * Accepted means durable, seen from the worker: a private redis-server is stopped and started
 * again empty (no persistence); the worker reconnects on its own, and its reconciler enqueues the
 * job that was accepted (written to PostgreSQL) while Redis was down.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '@app/config';
import {
  AdmissionRepository,
  AuditRepository,
  Database,
  DatasetRepository,
  DatasetSpool,
  encodeAdmission,
  type Job,
  JobRepository,
  ModelRegistry,
  TenantRepository,
} from '@app/db';
import { JobQueues } from '@app/queue';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { createTenant, sleep } from '../support/factories.js';
import { Api } from '../support/http.js';
import { type RunningProcess, startApi, startWorker } from '../support/processes.js';
import { PrivateRedis } from '../support/redis-server.js';

/** Quotas out of the way: these tests are about the worker, not admission. */
const NO_LIMITS = { maxQueuedJobs: Number.MAX_SAFE_INTEGER, monthlyComputeSeconds: Number.MAX_VALUE };

let redisServer: PrivateRedis;
let db: Database;
let jobs: JobRepository;
let queues: JobQueues;
let w: RunningProcess | undefined;

beforeAll(async () => {
  redisServer = await PrivateRedis.start();
  const config = loadConfig({ ...process.env, REDIS_URL: redisServer.url });
  db = new Database(config.databaseUrl, 2);
  jobs = new JobRepository(db);
  queues = new JobQueues(config);
});

afterAll(async () => {
  await w?.stop('SIGKILL');
  await queues?.close();
  await db?.close();
  await redisServer?.destroy();
});

async function waitFor(jobId: string, until: (j: Job) => boolean, timeoutMs: number): Promise<Job> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const j = (await jobs.byId(jobId))!;
    if (until(j)) return j;
    if (Date.now() > end) throw new Error(`job ${jobId} still ${j.status} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

describe('worker and a Redis restart', () => {
  it('reconnects by itself and runs the job accepted while Redis was down', async () => {
    const tenant = await db.prisma.$transaction((tx) =>
      new TenantRepository(db).create(tx, { name: 'redis-restart', plan: 'free', quotas: {} }),
    );
    const spool = new DatasetSpool();
    for (const row of blobRows(200, { seed: 5 })) await spool.append(row as Record<string, number | string>);
    const meta = { name: 'd', task: 'classification', label: 'label', textField: null, format: 'json' } as const;
    const ds = (await new DatasetRepository(db).store(
      tenant.id,
      meta,
      spool,
      { rows: 200, columns: [], bytes: 1000, sha256: 'x' },
      Number.MAX_SAFE_INTEGER,
    ))!;
    const model = await new ModelRegistry(db, new AuditRepository(db)).create(tenant.id, 'key_test', { name: 'm', task: 'classification' });
    const admission = new AdmissionRepository(db);
    const newJob = async () => {
      const data = { type: 'training' as const, modelId: model.id, datasetId: ds.id, hyperparameters: { epochs: 1 } };
      return (await admission.admit([encodeAdmission(tenant.id, data, NO_LIMITS)]))[0].job!;
    };

    w = await startWorker({
      REDIS_URL: redisServer.url,
      TF_BACKEND: 'wasm',
      WORKER_RECONCILE_INTERVAL_MS: '1000',
      WORKER_RECONCILE_AGE_MS: '1000',
      LOG_LEVEL: 'error',
    });
    const before = await newJob();
    await queues.enqueue(before);
    expect((await waitFor(before.id, (j) => j.status === 'succeeded', 20_000)).status).toBe('succeeded');

    await redisServer.kill();
    const during = await newJob();
    await expect(queues.enqueue(during)).rejects.toThrow();
    await sleep(1_500);
    await redisServer.resume();
    // Redis came back empty: only the reconciler knows of the job, and only PostgreSQL held it.
    const done = await waitFor(during.id, (j) => j.status === 'succeeded', 30_000);
    expect(done.attempts).toBe(1);
    expect(w.proc.exitCode).toBeNull();
  });

  it('accepts jobs over HTTP while Redis is down, and finishes every one once it returns', async () => {
    const api = await startApi({ REDIS_URL: redisServer.url });
    try {
      const t = await createTenant(api.url, { quotas: { requests_per_minute: 10_000 } });
      const ds = (await t.api.post('/v1/datasets', { name: 'd', task: 'classification', records: blobRows(150, { seed: 8 }) })).body;
      await t.api.post('/v1/models', { name: 'm', task: 'classification' });
      await redisServer.kill();
      const accepted: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await t.api.post('/v1/jobs', { type: 'training', model: 'm', dataset: ds.id, hyperparameters: { epochs: 1 } });
        expect([r.status, r.body.status]).toEqual([202, 'queued']);
        accepted.push(r.body.id);
      }
      expect((await new Api(api.url).get('/readyz')).status).toBe(503);
      await redisServer.resume();
      for (const id of accepted) expect((await waitFor(id, (j) => j.status === 'succeeded', 60_000)).attempts).toBe(1);
      expect((await t.api.get('/v1/models/m/versions?limit=100')).body.data).toHaveLength(5);
    } finally {
      await api.stop();
    }
  });
});
