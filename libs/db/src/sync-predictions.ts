import { newId } from '@app/common';
import { camelRow, type Database } from './database.js';
import type { Job } from './generated/client.js';

/** What every sync prediction row names, whether the worker or the API writes it. */
interface SyncPredictionRow {
  id: string;
  tenantId: string;
  modelId: string;
  version: number;
  alias: string | null;
  metadata: Record<string, unknown>;
  explain: boolean;
  maxAttempts: number;
  createdAt: string;
}

/** A finished sync prediction, as the worker records it: one `jobs` row of type inference. */
export interface SyncPredictionRecord extends SyncPredictionRow {
  status: 'succeeded' | 'failed';
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  computeSeconds: number;
  workerId: string;
  backend: string;
  attempts: number;
  startedAt: string;
  finishedAt: string;
  /** Output pages when the predictions exceed one page (`GET /v1/jobs/{id}/output`). */
  pages?: Array<Record<string, unknown>>;
}

/** A sync prediction the API stopped waiting for: written as a queued inference job, so that the client can poll it. */
export interface QueuedSyncPrediction extends SyncPredictionRow {
  inputs: unknown[];
}

/** An event written for a row that the API had already recorded as queued (the 202 case). */
export interface RecordedEvent {
  id: string;
  job_id: string;
  seq: number;
  type: 'job.succeeded' | 'job.failed';
  data: Record<string, unknown>;
  created_at: string;
}

/**
 * The job rows of the sync inference path, in plain `pg` (it is the hot path). A sync prediction
 * is not admitted before it runs: its row is written once it has finished, in one multi-row
 * upsert per batch, with no event history. Only when the API gave up waiting (202) does a row
 * exist before: `queued`, with its `job.queued` event; the upsert then finishes it and writes its
 * terminal event, so that pollers, waiters and streams of that job see it end.
 */
export class SyncPredictionRepository {
  constructor(private readonly db: Database) {}

  /**
   * Writes a batch's rows in one statement (rows of tenants deleted meanwhile are dropped). A row
   * the API wrote as queued is finished here unless something else (the job engine, after the
   * reconciler re-enqueued it) has started it. Returns the terminal events of those rows.
   */
  async record(rows: SyncPredictionRecord[]): Promise<RecordedEvent[]> {
    if (rows.length === 0) return [];
    const input = rows.map((r) => ({
      id: r.id,
      tenant_id: r.tenantId,
      model_id: r.modelId,
      version: r.version,
      alias: r.alias,
      metadata: r.metadata,
      explain: r.explain,
      status: r.status,
      result: r.result,
      error: r.error,
      compute_seconds: r.computeSeconds,
      worker_id: r.workerId,
      backend: r.backend,
      attempts: r.attempts,
      max_attempts: r.maxAttempts,
      created_at: r.createdAt,
      started_at: r.startedAt,
      finished_at: r.finishedAt,
      event_id: newId('evt'),
    }));
    const withPages = rows.filter((r) => r.pages && r.pages.length > 0);
    const client = await this.db.pool.connect();
    try {
      if (withPages.length > 0) await client.query('BEGIN');
      const { rows: events } = await client.query<Omit<RecordedEvent, 'created_at'> & { created_at: Date }>(
        `WITH input AS (
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
             id text, tenant_id text, model_id text, version int, alias text, metadata jsonb, explain boolean,
             status text, result jsonb, error jsonb, compute_seconds float8, worker_id text, backend text, attempts int, max_attempts int,
             created_at timestamptz, started_at timestamptz, finished_at timestamptz, event_id text)
         ), upserted AS (
           INSERT INTO jobs AS j (id, tenant_id, type, status, model_id, version, alias, metadata, explain, progress, attempts,
                                  max_attempts, worker_id, backend, compute_seconds, result, error, webhook_events,
                                  created_at, started_at, finished_at, updated_at)
           SELECT r.id, r.tenant_id, 'inference'::"JobType", r.status::"JobStatus", r.model_id, r.version, r.alias, r.metadata, r.explain,
                  CASE WHEN r.status = 'succeeded' THEN '{"percent": 100}'::jsonb ELSE '{}'::jsonb END, r.attempts,
                  r.max_attempts, r.worker_id, r.backend, r.compute_seconds, r.result, r.error, '{}'::text[],
                  r.created_at, r.started_at, r.finished_at, now()
             FROM input r
            WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = r.tenant_id)
            -- in id order: two batches naming the same rows (a retried one) lock them in the same order
            ORDER BY r.id
           ON CONFLICT (id) DO UPDATE SET
                  status = EXCLUDED.status, version = EXCLUDED.version, progress = EXCLUDED.progress, attempts = EXCLUDED.attempts,
                  worker_id = EXCLUDED.worker_id, backend = EXCLUDED.backend, compute_seconds = EXCLUDED.compute_seconds,
                  result = EXCLUDED.result, error = EXCLUDED.error, started_at = EXCLUDED.started_at,
                  finished_at = EXCLUDED.finished_at, updated_at = now(), event_seq = j.event_seq + 1
            WHERE j.status = 'queued'
           RETURNING j.id, j.status::text AS status, j.result, j.error, j.attempts, j.event_seq, (j.xmax::text <> '0') AS updated
         )
         INSERT INTO job_events (id, job_id, seq, type, data)
         SELECT i.event_id, u.id, u.event_seq, 'job.' || u.status,
                CASE WHEN u.status = 'succeeded' THEN u.result ELSE jsonb_build_object('error', u.error, 'attempt', u.attempts) END
           FROM upserted u JOIN input i ON i.id = u.id
          WHERE u.updated
         RETURNING id, job_id, seq, type, data, created_at`,
        [JSON.stringify(input)],
      );
      if (withPages.length > 0) {
        const pages = withPages.flatMap((r) => r.pages!.map((data, page) => ({ job_id: r.id, page, data })));
        await client.query(
          `INSERT INTO job_outputs (job_id, page, data)
           SELECT p.job_id, p.page, p.data FROM jsonb_to_recordset($1::jsonb) AS p(job_id text, page int, data jsonb)
            WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id)
           ON CONFLICT (job_id, page) DO UPDATE SET data = EXCLUDED.data`,
          [JSON.stringify(pages)],
        );
        await client.query('COMMIT');
      }
      return events.map((e) => ({ ...e, created_at: e.created_at.toISOString() }));
    } catch (err) {
      if (withPages.length > 0) await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * The API's side of a sync prediction that did not finish in time: the queued inference job
   * with its `job.queued` event, unless the worker's row is there already. Returns the row as it
   * stands (possibly finished meanwhile), or null when the tenant is gone.
   */
  async recordQueued(q: QueuedSyncPrediction): Promise<Job | null> {
    await this.db.pool.query(
      `WITH inserted AS (
         INSERT INTO jobs (id, tenant_id, type, status, model_id, version, alias, metadata, inputs, explain, webhook_events, max_attempts, event_seq, created_at, updated_at)
         SELECT $1::text, $2::text, 'inference'::"JobType", 'queued'::"JobStatus", $3::text, $4::int, $5::text, $6::jsonb, $7::jsonb, $8::boolean, '{}'::text[], $9::int, 1, $10::timestamptz, now()
          WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = $2::text)
         ON CONFLICT (id) DO NOTHING
         RETURNING id
       )
       INSERT INTO job_events (id, job_id, seq, type, data) SELECT $11::text, id, 1, 'job.queued', '{}'::jsonb FROM inserted`,
      [
        q.id,
        q.tenantId,
        q.modelId,
        q.version,
        q.alias,
        JSON.stringify(q.metadata),
        JSON.stringify(q.inputs),
        q.explain,
        q.maxAttempts,
        q.createdAt,
        newId('evt'),
      ],
    );
    const { rows } = await this.db.pool.query('SELECT * FROM jobs WHERE id = $1 AND tenant_id = $2', [q.id, q.tenantId]);
    return camelRow<Job>(rows[0]);
  }
}
