import { newId } from '@app/common';
import { camelRow, type Database, isWebhookEvent, type Job, type JobEvent, jobView, outboxStatement } from '@app/db';
import type pg from 'pg';
import type { JobStatus } from '@app/common';

/** A SET clause's columns: a value, or `{ add: n }` to add to the column. */
export type Changes = Record<string, unknown>;
export const add = (n: number) => ({ add: n });
/** A column set to the database's clock (`now()`), so that every process agrees on it. */
export const NOW = Symbol('now');
/** A JSON column's value (pg sends objects as JSON, but arrays as PostgreSQL arrays). */
export const json = (v: unknown) => ({ json: v === undefined ? null : v });
/** A column set by an SQL expression over the row (no parameters). */
export const sql = (expression: string) => ({ sql: expression });

export interface TransitionSpec {
  jobId: string;
  from: readonly JobStatus[];
  set: Changes;
  /** Compute seconds to meter for the tenant (the UTC day's `compute_seconds` counter), in the same statement. */
  meterSeconds?: number;
  /** `attempt: true` adds the row's attempt count, as it is after the UPDATE, to the data. */
  event: { type: string; data?: object; attempt?: boolean };
  /** More writes in the same transaction (a succeeded inference job's output pages). */
  also?: (client: pg.PoolClient, job: Job) => Promise<void>;
  /** A condition the row must meet besides `from`, over a CTE of its own (start's max_concurrent_jobs). */
  gate?: Gate;
}

/** A CTE named `gate` that the UPDATE reads (`param` adds a value), and what of the WHERE it adds, over `jobs` and `gate`. */
export interface Gate {
  cte: (param: (v: unknown) => string) => string;
  where: string;
}

export interface Moved {
  job: Job;
  event: JobEvent;
}

/** One try at a move: the move (null if none), whether a webhook may want its event, and the gate's row as it was read. */
export interface Attempt {
  moved: Moved | null;
  hooked: boolean;
  gate: Record<string, unknown> | null;
}

type Queryable = Pick<pg.Pool, 'query'>;

/**
 * The one way a job's status changes: a guarded UPDATE (it names the statuses it may leave, so
 * a job is never finished twice however often a worker retries or two workers race), its event
 * (numbered from the row it locks: per job, in commit order, no gaps), the usage it meters, and
 * the webhook messages of the event, atomically on plain `pg`. When no webhook may want the
 * event (the job has no webhook_url, its tenant no enabled endpoint) and nothing else is written,
 * that is one statement and one round trip (`quickMove`); else BEGIN, the UPDATE with its event
 * and meter, the outbox, COMMIT. Null when the job was not in one of `from`.
 */
export async function transition(db: Database, spec: TransitionSpec, client?: pg.PoolClient): Promise<Moved | null> {
  if (!client && !spec.also) {
    const quick = await quickMove(db, spec);
    if (quick.moved || !quick.hooked) return quick.moved;
  }
  const own = client ?? (await db.pool.connect());
  try {
    if (!client) await own.query('BEGIN');
    const { moved, hooked } = await moveRow(own, spec, false);
    if (moved) {
      if (isWebhookEvent(spec.event.type) && hooked) {
        const out = outboxStatement({ tenantId: moved.job.tenantId, type: spec.event.type, data: jobView(moved.job), job: moved.job });
        await own.query(out.text, out.values);
      }
      if (spec.also) await spec.also(own, moved.job);
    }
    if (!client) await own.query('COMMIT');
    return moved;
  } catch (err) {
    if (!client) await own.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    if (!client) own.release();
  }
}

/**
 * The move in one statement, outside any transaction, made only if no webhook may want its event
 * (the outbox message needs the job's view, rendered here after the UPDATE): `hooked` says that
 * was why nothing moved, and the caller goes the transaction's way.
 */
export function quickMove(db: Database, spec: TransitionSpec): Promise<Attempt> {
  return moveRow(db.pool, spec, isWebhookEvent(spec.event.type));
}

/** The UPDATE, its event and its meter in one statement; `unhookedOnly` leaves a row alone that a webhook may want. */
async function moveRow(client: Queryable, spec: TransitionSpec, unhookedOnly: boolean): Promise<Attempt> {
  const values: unknown[] = [spec.jobId, spec.from, newId('evt'), spec.event.type, JSON.stringify(spec.event.data ?? {})];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const sets = Object.entries(spec.set).map(([column, v]) => {
    if (v === NOW) return `${column} = now()`;
    if (v !== null && typeof v === 'object' && 'sql' in v) return `${column} = ${(v as { sql: string }).sql}`;
    if (v !== null && typeof v === 'object' && 'add' in v) return `${column} = ${column} + ${param((v as { add: number }).add)}`;
    if (v !== null && typeof v === 'object' && 'json' in v) {
      const j = (v as { json: unknown }).json;
      return `${column} = ${param(j === null ? null : JSON.stringify(j))}::jsonb`;
    }
    return `${column} = ${param(v)}`;
  });
  const seconds = Math.ceil(spec.meterSeconds ?? 0);
  const meter =
    seconds > 0
      ? `, metered AS (
           INSERT INTO usage_counters (tenant_id, metric, day, value)
           SELECT tenant_id, 'compute_seconds', (now() AT TIME ZONE 'UTC')::date, ${param(seconds)}::bigint FROM moved
           ON CONFLICT (tenant_id, metric, day) DO UPDATE SET value = usage_counters.value + EXCLUDED.value)`
      : '';
  const gate = spec.gate ? `gate AS (${spec.gate.cte(param)}),` : '';
  const where = [
    'id = $1 AND status = ANY($2::"JobStatus"[])',
    ...(spec.gate ? [`(${spec.gate.where})`] : []),
    ...(unhookedOnly ? ['NOT (SELECT hooked FROM hook)'] : []),
  ];
  const { rows } = await client.query(
    `WITH hook AS (
       SELECT (j.webhook_url IS NOT NULL OR EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.tenant_id = j.tenant_id AND e.enabled)) AS hooked
         FROM jobs j WHERE j.id = $1),
     ${gate}
     moved AS (
       UPDATE jobs SET ${[...sets, 'event_seq = event_seq + 1', 'updated_at = now()'].join(', ')}
        WHERE ${where.join(' AND ')}
        RETURNING *),
     ev AS (
       INSERT INTO job_events (id, job_id, seq, type, data)
       SELECT $3, id, event_seq, $4, ${spec.event.attempt ? `$5::jsonb || jsonb_build_object('attempt', attempts)` : '$5::jsonb'} FROM moved
       RETURNING id, seq, data, created_at)${meter}
     SELECT m.*, hook.hooked AS ev_hooked, ${spec.gate ? 'to_jsonb(gate)' : 'NULL::jsonb'} AS ev_gate
       FROM hook ${spec.gate ? 'CROSS JOIN gate' : ''}
       LEFT JOIN (SELECT moved.*, ev.id AS ev_id, ev.seq AS ev_seq, ev.data AS ev_data, ev.created_at AS ev_created_at
                    FROM moved, ev) m ON true`,
    values,
  );
  const row = rows[0];
  if (!row) return { moved: null, hooked: false, gate: null };
  const { ev_id, ev_seq, ev_data, ev_created_at, ev_hooked, ev_gate, ...rest } = row;
  if (ev_id === null) return { moved: null, hooked: ev_hooked, gate: ev_gate };
  const job = camelRow<Job>(rest)!;
  const event = {
    id: ev_id,
    jobId: job.id,
    seq: BigInt(ev_seq),
    type: spec.event.type,
    data: ev_data,
    createdAt: ev_created_at,
  } as JobEvent;
  return { moved: { job, event }, hooked: ev_hooked, gate: ev_gate };
}
