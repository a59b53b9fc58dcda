import { ACTIVE, effectiveQuotas, isActive, type JobStatus, PLAN_QUOTAS, type Quotas } from '@app/common';
import { camelRow, type Database, type Job, type JobEvent } from '@app/db';
import { type JobEffects, type JobQueuePort, NO_QUEUES } from './effects.js';
import type pg from 'pg';
import { add, type Gate, json, type Moved, NOW, quickMove, sql, transition, type TransitionSpec } from './transition.js';

export interface JobError {
  code: string;
  message: string;
}

/** The started job and its quotas; or why it did not start: its tenant at max_concurrent_jobs, a cancel asked for, or (null) not active. */
export type StartResult = { job: Job; event: JobEvent; quotas: Quotas } | 'at_concurrency_limit' | 'cancel_requested' | null;

/**
 * A job's whole life, in one place: every change of a job's status goes through a method here,
 * each a guarded transition (transition.ts) whose event is published once it commits (effects.ts),
 * with the compute it metered. The API (submit is libs/db's admission; cancel, admin retry) and
 * the workers (start, progress, the ends, hand-back, the reconciler's repairs) call these and
 * nothing else writes `jobs.status`.
 *
 *   queued ──start──▶ running ──succeed──▶ succeeded
 *     │  ▲              │ │ └───fail────▶ failed ──adminRetry──▶ queued
 *     │  └─retry/handBack/requeueLost─┘ │
 *     └──────cancel / failNoGpu──────────┴──cancel──▶ canceled
 */
export class JobLifecycle {
  constructor(
    private readonly db: Database,
    private readonly effects: JobEffects,
    private readonly queues: JobQueuePort = NO_QUEUES,
  ) {}

  /**
   * A worker takes the job: queued|running → running (running again when a stalled or crashed
   * attempt is picked up elsewhere), counting the attempt, with `job.started` (`{attempt,
   * worker_id, backend}`) and the quotas it runs under. max_concurrent_jobs holds across all
   * workers: starts of one tenant's jobs take turns on its counter row, and a queued job past the
   * limit does not start (one already running, handed back by a stall, does: it holds its own slot).
   */
  async start(jobId: string, workerId: string, backend: string): Promise<StartResult> {
    const spec = startSpec(jobId, workerId, backend);
    // Most starts are one statement: the gate locks the tenant's counter row, the UPDATE starts the
    // job only under the limit (or one running already), no webhook wanting job.started.
    const quick = await quickMove(this.db, { ...spec, gate: CONCURRENCY_GATE });
    const gate = quick.gate as {
      status: JobStatus;
      plan: string;
      quotas: Record<string, unknown>;
      at_limit: boolean;
      cancel: boolean;
    } | null;
    if (quick.moved) {
      this.effects.published(quick.moved.event, quick.moved.job);
      return { ...quick.moved, quotas: effectiveQuotas(gate!.plan, gate!.quotas) };
    }
    if (!gate || !isActive(gate.status)) return null;
    if (gate.cancel) return 'cancel_requested';
    if (gate.at_limit && gate.status === 'queued') return 'at_concurrency_limit';
    if (quick.hooked) return this.startHooked(spec);
    return gate.at_limit ? 'at_concurrency_limit' : null;
  }

  /** A start whose job.started a webhook may want: the gate, then the move with its outbox message, in one transaction. */
  private async startHooked(spec: TransitionSpec): Promise<StartResult> {
    const client = await this.db.pool.connect();
    let moved: Moved | null = null;
    let quotas: Quotas;
    try {
      await client.query('BEGIN');
      // The tenant's counter row (tenant_job_counts, kept by triggers at commit) is the lock: starts
      // of one tenant take turns on it, and each reads the running count the previous one committed.
      const { rows } = await client.query<{
        status: JobStatus;
        cancel_requested: boolean;
        plan: string;
        quotas: Record<string, unknown>;
        running: number;
      }>(
        `SELECT j.status, j.cancel_requested, t.plan, t.quotas, c.running
           FROM jobs j JOIN tenants t ON t.id = j.tenant_id JOIN tenant_job_counts c ON c.tenant_id = j.tenant_id
          WHERE j.id = $1 FOR UPDATE OF c`,
        [spec.jobId],
      );
      const owner = rows[0];
      if (!owner || !isActive(owner.status) || owner.cancel_requested) {
        await client.query('ROLLBACK');
        return owner?.cancel_requested && isActive(owner.status) ? 'cancel_requested' : null;
      }
      quotas = effectiveQuotas(owner.plan, owner.quotas);
      const atLimit = owner.running >= quotas.max_concurrent_jobs;
      if (owner.status === 'queued' && atLimit) {
        await client.query('ROLLBACK');
        return 'at_concurrency_limit';
      }
      // At the limit only a job already running (handed back by a stall) may start again. The
      // UPDATE reads the row as it is now: a job that went back to queued while this start waited
      // for the tenant's turn does not start past the limit.
      moved = await transition(this.db, { ...spec, from: atLimit ? ['running'] : ACTIVE }, client);
      await client.query('COMMIT');
      if (!moved && atLimit) return 'at_concurrency_limit';
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    if (!moved) return null;
    this.effects.published(moved.event, moved.job);
    return { ...moved, quotas: quotas! };
  }

  /** Progress of a running job (not a change of status): its row and a `job.progress` event; null once it left running. */
  progress(jobId: string, progress: object, data: object): Promise<Moved | null> {
    return this.move({ jobId, from: ['running'], set: { progress: json(progress) }, event: { type: 'job.progress', data } });
  }

  /**
   * A batch prediction's checkpoint: its progress and `write` (the output rows of a chunk) in one
   * transaction, with a `job.progress` event when `event` is given (they are throttled). Null, and
   * nothing written, once the job left running; else whether a cancel was asked for.
   */
  async checkpoint(
    jobId: string,
    progress: object,
    event: object | null,
    write: (client: pg.PoolClient) => Promise<void>,
  ): Promise<{ cancelRequested: boolean } | null> {
    if (event) {
      const moved = await this.move({
        jobId,
        from: ['running'],
        set: { progress: json(progress) },
        event: { type: 'job.progress', data: event },
        also: write,
      });
      return moved && { cancelRequested: moved.job.cancelRequested };
    }
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ cancel_requested: boolean }>(
        `UPDATE jobs SET progress = $2::jsonb, updated_at = now() WHERE id = $1 AND status = 'running' RETURNING cancel_requested`,
        [jobId, JSON.stringify(progress)],
      );
      if (!rows[0]) {
        await client.query('ROLLBACK');
        return null;
      }
      await write(client);
      await client.query('COMMIT');
      return { cancelRequested: rows[0].cancel_requested };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * running → succeeded, with the version it made or used, its result, the seconds it ran (added
   * to earlier attempts' and metered), and an inference job's output pages; `also`: more writes in
   * the same transaction (a batch prediction's file made readable).
   */
  succeed(
    job: Job,
    outcome: {
      version: number | null;
      result: object;
      seconds: number;
      progress: object;
      pages?: object[];
      also?: (client: pg.PoolClient) => Promise<void>;
    },
  ): Promise<Moved | null> {
    const { pages, also } = outcome;
    return this.move({
      jobId: job.id,
      from: ['running'],
      set: {
        status: 'succeeded',
        version: outcome.version,
        result: json(outcome.result),
        compute_seconds: add(outcome.seconds),
        finished_at: NOW,
        progress: json(outcome.progress),
      },
      meterSeconds: outcome.seconds,
      event: { type: 'job.succeeded', data: outcome.result },
      also:
        pages || also
          ? async (client) => {
              if (pages) await writeOutputs(client, job.id, pages);
              if (also) await also(client);
            }
          : undefined,
    });
  }

  /**
   * running (or `from`) → failed for good, with its error and the seconds this attempt ran;
   * `result`: what it finished all the same (a batch prediction's partial file).
   */
  fail(job: Job, error: JobError, seconds = 0, from: readonly JobStatus[] = ['running'], result?: object | null): Promise<Moved | null> {
    return this.move({
      jobId: job.id,
      from,
      set: {
        status: 'failed',
        error: json(error),
        finished_at: NOW,
        compute_seconds: add(seconds),
        ...(result ? { result: json(result) } : {}),
      },
      meterSeconds: seconds,
      event: { type: 'job.failed', data: { error, attempt: job.attempts } },
    });
  }

  /** running → queued after a failed attempt with attempts left; BullMQ runs it again after `nextAttemptInMs`. */
  retry(job: Job, error: JobError, seconds: number, nextAttemptInMs: number): Promise<Moved | null> {
    return this.move({
      jobId: job.id,
      from: ['running'],
      set: { status: 'queued', compute_seconds: add(seconds) },
      meterSeconds: seconds,
      event: { type: 'job.retrying', data: { attempt: job.attempts, error, next_attempt_in_ms: nextAttemptInMs } },
    });
  }

  /** running → queued without spending the attempt: the worker shuts down and another takes the job. */
  handBack(job: Job): Promise<Moved | null> {
    const error = { code: 'worker_shutdown', message: 'The worker shut down; the job goes back to the queue' };
    return this.move({
      jobId: job.id,
      from: ['running'],
      set: { status: 'queued', attempts: add(-1) },
      event: { type: 'job.retrying', data: { attempt: job.attempts, error, next_attempt_in_ms: 0 } },
    });
  }

  /**
   * A worker stops a job on request (or finds it flagged before it began): → canceled, metering
   * what it ran; `result`: what it finished before (a batch prediction's partial file).
   */
  canceled(job: Job, from: readonly JobStatus[], seconds: number, reason: string, result?: object | null): Promise<Moved | null> {
    return this.move({
      jobId: job.id,
      from,
      set: {
        status: 'canceled',
        finished_at: NOW,
        compute_seconds: add(seconds),
        cancel_requested: true,
        ...(result ? { result: json(result) } : {}),
      },
      meterSeconds: seconds,
      event: { type: 'job.canceled', data: { reason } },
    });
  }

  /**
   * A tenant (or an admin: `tenantId` null) cancels. A queued job never starts: it leaves the
   * queues and is canceled here. A running job is flagged and its worker told; it stops within
   * two seconds and ends canceled. Null when the job is not the tenant's; the job as it stands
   * otherwise, or `{ finished }` when it had already ended.
   */
  async cancel(tenantId: string | null, jobId: string): Promise<Job | { finished: Job } | null> {
    const { rows } = await this.db.pool.query(
      `UPDATE jobs SET cancel_requested = true, updated_at = now()
        WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) AND status = ANY($3::"JobStatus"[]) RETURNING *`,
      [jobId, tenantId, ACTIVE],
    );
    const flagged = camelRow<Job>(rows[0]);
    if (!flagged) {
      const current = await this.read(jobId);
      if (!current || (tenantId && current.tenantId !== tenantId)) return null;
      return isActive(current.status) ? this.cancel(tenantId, jobId) : { finished: current };
    }
    if (flagged.status === 'queued') {
      await this.queues.unschedule(flagged);
      const moved = await this.move({
        jobId,
        from: ['queued'],
        set: { status: 'canceled', finished_at: NOW },
        event: { type: 'job.canceled', data: { reason: 'requested' } },
      });
      if (moved) return moved.job;
    }
    // Running (or taken by a worker meanwhile): the worker stops it.
    await this.queues.stopRunning(jobId);
    return (await this.read(jobId))!;
  }

  /** A running job whose worker was lost goes back to the queue (the reconciler). */
  async requeueLost(job: Job): Promise<Moved | null> {
    const error = { code: 'worker_lost', message: 'The worker running this job was lost' };
    const moved = await this.move({
      jobId: job.id,
      from: ['running'],
      set: { status: 'queued' },
      event: { type: 'job.retrying', data: { attempt: job.attempts, error, next_attempt_in_ms: 0 } },
    });
    if (moved) await this.queues.schedule(moved.job);
    return moved;
  }

  /** A queued job the queues lost (Redis restarted empty, or was down when it was accepted) goes back to the scheduler (the reconciler). */
  reschedule(job: Job): Promise<void> {
    return this.queues.schedule(job);
  }

  /** A running job whose worker was lost with no attempts left fails (the reconciler). */
  failLost(job: Job): Promise<Moved | null> {
    return this.fail(job, { code: 'worker_lost', message: `The worker running attempt ${job.attempts} was lost and no attempts are left` });
  }

  /** A gpu job no GPU worker took within the limit fails, and leaves the queues (the reconciler). */
  async failNoGpu(job: Job, limitSeconds: number): Promise<Moved | null> {
    const error = {
      code: 'no_gpu_worker',
      message: `The job asked for a GPU (resources.accelerator "gpu") and no GPU worker came online within ${limitSeconds} s`,
    };
    const moved = await this.fail(job, error, 0, ['queued']);
    if (moved) await this.queues.unschedule(moved.job);
    return moved;
  }

  /**
   * An admin runs a failed job again, as a new attempt: back to queued (error and end cleared,
   * started_at and with it max_job_seconds start again, one more attempt allowed), its old queue
   * entry removed, handed to the scheduler. Null when it was not failed (any more).
   */
  async adminRetry(job: Job): Promise<Moved | null> {
    const moved = await this.move({
      jobId: job.id,
      from: ['failed'],
      set: { status: 'queued', error: null, started_at: null, finished_at: null, cancel_requested: false, max_attempts: add(1) },
      event: { type: 'job.retrying', data: { attempt: job.attempts, by: 'admin', next_attempt_in_ms: 0 } },
    });
    if (!moved) return null;
    await this.queues.unschedule(moved.job);
    await this.queues.schedule(moved.job);
    return moved;
  }

  /** A job by id, on plain `pg` (the workers' and the lifecycle's own reads). */
  async read(jobId: string): Promise<Job | null> {
    const { rows } = await this.db.pool.query('SELECT * FROM jobs WHERE id = $1', [jobId]);
    return camelRow<Job>(rows[0]);
  }

  /** A transition, then its event published once committed. */
  private async move(spec: TransitionSpec): Promise<Moved | null> {
    const moved = await transition(this.db, spec);
    if (moved) this.effects.published(moved.event, moved.job);
    return moved;
  }
}

/** A job's output pages, replacing any of an earlier attempt: one multi-row INSERT. */
async function writeOutputs(client: pg.PoolClient, jobId: string, pages: object[]): Promise<void> {
  await client.query('DELETE FROM job_outputs WHERE job_id = $1', [jobId]);
  if (pages.length === 0) return;
  await client.query(
    `INSERT INTO job_outputs (job_id, page, data) SELECT $1, p.page - 1, p.data FROM unnest($2::jsonb[]) WITH ORDINALITY AS p(data, page)`,
    [jobId, pages.map((p) => JSON.stringify(p))],
  );
}

/** queued|running → running, counting the attempt. */
function startSpec(jobId: string, workerId: string, backend: string): TransitionSpec {
  return {
    jobId,
    from: ACTIVE,
    set: {
      status: 'running',
      attempts: add(1),
      worker_id: workerId,
      backend,
      error: null,
      started_at: sql('coalesce(started_at, now())'),
    },
    event: { type: 'job.started', data: { worker_id: workerId, backend }, attempt: true },
  };
}

/**
 * max_concurrent_jobs in SQL, as effectiveQuotas computes it (the tenant's override, else its
 * plan's): the gate locks the tenant's counter row (tenant_job_counts, kept by triggers at
 * commit), so starts of one tenant take turns on it and each reads the running count the previous
 * one committed. At the limit only a job already running (handed back by a stall) starts again;
 * a job that went back to queued while the start waited for the turn is checked as it is now
 * (PostgreSQL re-reads the updated row against the WHERE). A job with a cancel asked for never starts.
 */
const CONCURRENCY_GATE: Gate = {
  cte: (param) => {
    const limits = param(JSON.stringify(Object.fromEntries(Object.entries(PLAN_QUOTAS).map(([plan, q]) => [plan, q.max_concurrent_jobs]))));
    return `SELECT j.status, j.cancel_requested AS cancel, t.plan, t.quotas,
                   c.running >= coalesce(
                     CASE WHEN jsonb_typeof(t.quotas -> 'max_concurrent_jobs') = 'number' THEN (t.quotas ->> 'max_concurrent_jobs')::float8 END,
                     (${limits}::jsonb ->> t.plan)::float8, (${limits}::jsonb ->> 'free')::float8) AS at_limit
              FROM jobs j JOIN tenants t ON t.id = j.tenant_id JOIN tenant_job_counts c ON c.tenant_id = j.tenant_id
             WHERE j.id = $1 FOR UPDATE OF c`;
  },
  where: `(jobs.status = 'running' OR NOT (SELECT at_limit FROM gate)) AND NOT jobs.cancel_requested`,
};
