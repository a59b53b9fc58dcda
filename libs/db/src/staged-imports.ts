import { newId } from '@app/common';
import type { Database } from './database.js';

/** A worker's verdict on a staged import: it loads and predicts, or the reason it does not. */
export type LoadCheckOutcome = { ok: true } | { ok: false; error: { code: string; message: string } };

/**
 * Imported models waiting for their load check (the API's side, tenant first). A staged import is
 * not a version: no read path lists it, it holds no version number and counts no storage. The API
 * stages the artifact, a worker loads it by id, and the API then discards it, whatever the verdict.
 */
export class StagedImportRepository {
  constructor(private readonly db: Database) {}

  /**
   * Stages an artifact unless the tenant already has `maxInFlight` imports younger than
   * `windowMs` waiting (null then). A per-tenant advisory lock orders concurrent stagings, so
   * that imports racing each other cannot overshoot the limit.
   */
  async stage(tenantId: string, modelId: string, artifact: Buffer, maxInFlight: number, windowMs: number): Promise<string | null> {
    const id = newId('imp');
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("SELECT pg_advisory_xact_lock(hashtext('staged_imports:' || $1))", [tenantId]);
      const { rowCount } = await client.query(
        `INSERT INTO staged_imports (id, tenant_id, model_id, artifact)
         SELECT $1, $2, $3, $4
          WHERE (SELECT count(*) FROM staged_imports WHERE tenant_id = $2 AND created_at > now() - make_interval(secs => $6)) < $5`,
        [id, tenantId, modelId, artifact, maxInFlight, windowMs / 1000],
      );
      await client.query('COMMIT');
      return rowCount === 1 ? id : null;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The verdict a worker recorded, if any (for a reply missed on the way). */
  async outcome(tenantId: string, id: string): Promise<LoadCheckOutcome | null> {
    const { rows } = await this.db.pool.query<{ outcome: LoadCheckOutcome | null }>(
      'SELECT outcome FROM staged_imports WHERE tenant_id = $1 AND id = $2',
      [tenantId, id],
    );
    return rows[0]?.outcome ?? null;
  }

  async discard(tenantId: string, id: string): Promise<void> {
    await this.db.pool.query('DELETE FROM staged_imports WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  }
}

/** The worker's side of load checks: staged artifacts by id, verdicts, and the sweep of abandoned ones. */
export class LoadCheckRepository {
  constructor(private readonly db: Database) {}

  /** The staged artifact, or null once the API has discarded it (it stopped waiting). */
  async artifact(id: string): Promise<Buffer | null> {
    const { rows } = await this.db.pool.query<{ artifact: Buffer }>('SELECT artifact FROM staged_imports WHERE id = $1', [id]);
    return rows[0]?.artifact ?? null;
  }

  async record(id: string, outcome: LoadCheckOutcome): Promise<void> {
    await this.db.pool.query('UPDATE staged_imports SET outcome = $2 WHERE id = $1', [id, JSON.stringify(outcome)]);
  }

  /** Drops staged imports older than `ageMs` (their API instance died before discarding them). */
  async sweep(ageMs: number): Promise<number> {
    const { rowCount } = await this.db.pool.query('DELETE FROM staged_imports WHERE created_at < now() - make_interval(secs => $1)', [
      ageMs / 1000,
    ]);
    return rowCount ?? 0;
  }
}
