import { afterAll, beforeAll, beforeEach, expect } from '@jest/globals';
import { newId } from '@app/common';
import { AdmissionRepository, Database, encodeAdmission, type Job, type JobEvent } from '@app/db';
import { type JobEffects, JobLifecycle, type JobQueuePort } from '@app/jobs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

// The medium tier: libs/jobs against a real PostgreSQL (the run's migrated database), with the
// two ports it talks to besides it (JobEffects, JobQueuePort) recorded instead of Redis.

/** What another connection saw of a job, at the instant its event was published. */
export interface Seen {
  status: string;
  event_seq: number;
  /** Whether the published event's row is committed. */
  event_committed: boolean;
}

/** An effect as published, with what another connection saw of its job at that instant. */
export interface Published {
  event: JobEvent;
  job: Job;
  seen: Seen | undefined;
}

// The observer: a thread with a connection of its own. published() blocks this thread until the
// observer has read the job, so the lifecycle can do nothing meanwhile (no COMMIT either): what
// the observer sees was committed before published() was called, deterministically.
const OBSERVER = `
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pg);
const client = new pg.Client({ connectionString: workerData.url });
const ready = client.connect();
const answered = new Int32Array(workerData.answered);
workerData.port.on('message', async ({ jobId, eventId }) => {
  let reply;
  try {
    await ready;
    const { rows } = await client.query(
      'SELECT status, event_seq, EXISTS (SELECT 1 FROM job_events e WHERE e.id = $2) AS event_committed FROM jobs WHERE id = $1',
      [jobId, eventId],
    );
    reply = { row: rows[0] };
  } catch (err) {
    reply = { error: err.message };
  }
  workerData.port.postMessage(reply);
  Atomics.add(answered, 0, 1);
  Atomics.notify(answered, 0);
});
workerData.port.on('close', () => client.end());
`;

class Observer {
  private readonly answered = new Int32Array(new SharedArrayBuffer(4));
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private asked = 0;

  constructor(url: string) {
    const { port1, port2 } = new MessageChannel();
    const pgPath = createRequire(join(process.cwd(), 'package.json')).resolve('pg');
    this.worker = new Worker(OBSERVER, {
      eval: true,
      workerData: { url, pg: pgPath, answered: this.answered.buffer, port: port2 },
      transferList: [port2],
    });
    this.port = port1;
  }

  /** The job as another connection sees it now; blocks this thread until it answers. */
  read(jobId: string, eventId: string): Seen | undefined {
    this.port.postMessage({ jobId, eventId });
    this.asked += 1;
    for (let n = Atomics.load(this.answered, 0); n < this.asked; n = Atomics.load(this.answered, 0)) {
      if (Atomics.wait(this.answered, 0, n, 10_000) === 'timed-out') throw new Error('the observer did not answer within 10 s');
    }
    const reply = receiveMessageOnPort(this.port)?.message as { row?: Seen; error?: string };
    if (reply.error) throw new Error(`observer: ${reply.error}`);
    return reply.row;
  }

  async close(): Promise<void> {
    this.port.close();
    await this.worker.terminate();
  }
}

export class RecordingEffects implements JobEffects {
  list: Published[] = [];
  constructor(private readonly observer: Observer) {}

  published(event: JobEvent, job: Job): void {
    this.list.push({ event, job, seen: this.observer.read(job.id, event.id) });
  }
}

export interface QueueCall {
  op: 'schedule' | 'unschedule' | 'stopRunning';
  jobId: string;
  /** The status of the job handed over (none for stopRunning, which takes an id). */
  status?: string;
}

export class RecordingQueues implements JobQueuePort {
  calls: QueueCall[] = [];
  /** Runs inside unschedule(), after it is recorded: what happens meanwhile (a worker takes the job). */
  duringUnschedule?: (job: Job) => Promise<unknown>;
  async schedule(job: Job): Promise<void> {
    this.calls.push({ op: 'schedule', jobId: job.id, status: job.status });
  }
  async unschedule(job: Job): Promise<void> {
    this.calls.push({ op: 'unschedule', jobId: job.id, status: job.status });
    await this.duringUnschedule?.(job);
  }
  async stopRunning(jobId: string): Promise<void> {
    this.calls.push({ op: 'stopRunning', jobId });
  }
}

/** A transaction of its own holding a job's row lock: a transition of that job waits until release(). */
export async function holdRow(db: Database, jobId: string): Promise<{ release(): Promise<void> }> {
  const client = await db.pool.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [jobId]);
  return {
    async release() {
      await client.query('COMMIT');
      client.release();
    },
  };
}

export interface Medium {
  db: Database;
  lifecycle: JobLifecycle;
  effects: RecordingEffects;
  queues: RecordingQueues;
  /** Forgets what setup published and scheduled. */
  reset(): void;
}

/** A lifecycle on the run's database, its ports recorded; each test starts with empty records. */
export function useMedium(): Medium {
  const m = {} as Medium;
  let observer: Observer;
  beforeAll(async () => {
    m.db = new Database(process.env.DATABASE_URL!);
    observer = new Observer(process.env.DATABASE_URL!);
    m.effects = new RecordingEffects(observer);
    m.queues = new RecordingQueues();
    m.lifecycle = new JobLifecycle(m.db, m.effects, m.queues);
    m.reset = () => {
      m.effects.list = [];
      m.queues.calls = [];
      m.queues.duringUnschedule = undefined;
    };
  });
  beforeEach(() => m.reset());
  afterAll(async () => {
    await observer?.close();
    await m.db?.close();
  });
  return m;
}

/** A fresh tenant (so tests share no rows) with one model; `quotas` override its plan's. */
export async function createTenant(db: Database, quotas: Record<string, number> = {}): Promise<{ id: string; modelId: string }> {
  const id = newId('ten');
  const modelId = newId('mdl');
  await db.pool.query(`INSERT INTO tenants (id, name, plan, quotas, updated_at) VALUES ($1, $1, 'pro', $2, now())`, [id, quotas]);
  await db.pool.query(`INSERT INTO models (id, tenant_id, name, task, updated_at) VALUES ($1, $2, 'm', 'classification', now())`, [
    modelId,
    id,
  ]);
  return { id, modelId };
}

/** An enabled webhook endpoint of the tenant, taking every event type (or `events`). */
export async function addEndpoint(db: Database, tenantId: string, events: string[] = []): Promise<string> {
  const id = newId('whe');
  await db.pool.query(
    `INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret, updated_at) VALUES ($1, $2, 'https://hooks.example.com/x', $3, 'enc', now())`,
    [id, tenantId, events],
  );
  return id;
}

export interface JobOptions {
  webhookUrl?: string;
  webhookEvents?: string[];
  maxAttempts?: number;
  accelerator?: string;
}

/** A queued training job with its `job.queued` event (seq 1), admitted as the API does. */
export async function queuedJob(db: Database, tenant: { id: string; modelId: string }, opts: JobOptions = {}): Promise<Job> {
  const [admitted] = await new AdmissionRepository(db).admit([
    encodeAdmission(tenant.id, { type: 'training', modelId: tenant.modelId, ...opts }, { maxQueuedJobs: 1000, monthlyComputeSeconds: 1e9 }),
  ]);
  return admitted.job!;
}

/** A job a worker started (attempt 1); the records are reset after it. */
export async function runningJob(m: Medium, tenant: { id: string; modelId: string }, opts: JobOptions = {}): Promise<Job> {
  const job = await queuedJob(m.db, tenant, opts);
  const started = await m.lifecycle.start(job.id, 'wrk_1', 'cpu');
  if (!started || typeof started === 'string') throw new Error(`could not start ${job.id}: ${started}`);
  m.reset();
  return started.job;
}

/** The job's events, oldest first. */
export async function eventsOf(db: Database, jobId: string): Promise<Array<{ seq: number; type: string; data: Record<string, unknown> }>> {
  const { rows } = await db.pool.query('SELECT seq::int AS seq, type, data FROM job_events WHERE job_id = $1 ORDER BY seq', [jobId]);
  return rows;
}

/** The job's newest event. */
export async function lastEvent(db: Database, jobId: string) {
  return (await eventsOf(db, jobId)).at(-1)!;
}

/** The tenant's webhook outbox, oldest first. */
export async function outboxOf(
  db: Database,
  tenantId: string,
): Promise<Array<{ endpoint_id: string | null; url: string | null; event_type: string; payload: any }>> {
  const { rows } = await db.pool.query(
    'SELECT endpoint_id, url, event_type, payload FROM webhook_messages WHERE tenant_id = $1 ORDER BY created_at, event_type, id',
    [tenantId],
  );
  return rows;
}

/** The tenant's metered compute seconds, by UTC day. */
export async function computeUsage(db: Database, tenantId: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ day: string; value: number }>(
    `SELECT day::text AS day, value FROM usage_counters WHERE tenant_id = $1 AND metric = 'compute_seconds'`,
    [tenantId],
  );
  return Object.fromEntries(rows.map((r) => [r.day, r.value]));
}

/** Today's date in UTC, as usage_counters keys it. */
export const utcToday = () => new Date().toISOString().slice(0, 10);

/** Every row the lifecycle may write for a tenant. */
async function footprint(db: Database, tenantId: string) {
  const q = async (text: string) => (await db.pool.query(text, [tenantId])).rows;
  return {
    jobs: await q('SELECT * FROM jobs WHERE tenant_id = $1 ORDER BY id'),
    events: await q('SELECT e.* FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.tenant_id = $1 ORDER BY e.id'),
    outputs: await q('SELECT o.* FROM job_outputs o JOIN jobs j ON j.id = o.job_id WHERE j.tenant_id = $1 ORDER BY o.job_id, o.page'),
    outbox: await q('SELECT * FROM webhook_messages WHERE tenant_id = $1 ORDER BY id'),
    usage: await q('SELECT * FROM usage_counters WHERE tenant_id = $1 ORDER BY metric, day'),
  };
}

/**
 * Runs `call` and checks that it wrote nothing for the tenant (no job change, event, output,
 * outbox row or usage) and published or queued nothing; returns what it returned.
 */
export async function withoutWrites<T>(m: Medium, tenantId: string, call: () => Promise<T>): Promise<T> {
  const before = await footprint(m.db, tenantId);
  const [published, queued] = [m.effects.list.length, m.queues.calls.length];
  const result = await call();
  expect(await footprint(m.db, tenantId)).toEqual(before);
  expect([m.effects.list.length, m.queues.calls.length]).toEqual([published, queued]);
  return result;
}

/** The one effect published since the last reset, checked to have been committed when published. */
export async function publishedOnce(m: Medium): Promise<Published> {
  expect(m.effects.list).toHaveLength(1);
  const [p] = m.effects.list;
  expect(p.seen).toEqual({ status: p.job.status, event_seq: Number(p.event.seq), event_committed: true });
  return p;
}

/** Resolves once `count` backends of this database wait on `waitEvent` (pg_stat_activity: 'advisory', 'transactionid', ...). */
export async function waitersOn(db: Database, waitEvent: string, count = 1, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = $1',
      [waitEvent],
    );
    if (rows[0].n >= count) return;
    if (Date.now() > end) throw new Error(`${count} backend(s) did not wait on ${waitEvent} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
