import { newId } from '@app/common';
import type { Database } from './database.js';

/** Rows per stored chunk of a feature set. */
const CHUNK_ROWS = 1_000;

export interface FeatureKey {
  baseId: string;
  baseSha256: string;
  /** How the features were computed (libs/ml's layout): another layout is another set. */
  preprocessing: string;
}

/**
 * The feature cache of transfer learning: a dataset's features from a foundation model, stored
 * once per (dataset, base id, base sha256, preprocessing) as float32 chunks, read back by later
 * trainings on the same data. Kept apart from the tenant's `max_storage_bytes` (it is derived data
 * the platform can drop at any time) and bounded as a whole: past `maxBytes`, the sets used least
 * recently are dropped. A dataset's sets go with it (foreign key).
 */
export class FeatureCacheRepository {
  constructor(
    private readonly db: Database,
    private readonly maxBytes: number,
  ) {}

  /** The cached rows, in dataset order, or null; a hit marks the set as used. */
  async get(datasetId: string, key: FeatureKey): Promise<Float32Array[] | null> {
    const { rows: sets } = await this.db.pool.query<{ id: string; rows: number; width: number }>(
      `UPDATE feature_sets SET last_used_at = now()
        WHERE dataset_id = $1 AND base_id = $2 AND base_sha256 = $3 AND preprocessing = $4 RETURNING id, rows, width`,
      [datasetId, key.baseId, key.baseSha256, key.preprocessing],
    );
    if (sets.length === 0) return null;
    const { id, rows, width } = sets[0];
    const { rows: chunks } = await this.db.pool.query<{ rows: number; data: Buffer }>(
      'SELECT rows, data FROM feature_chunks WHERE set_id = $1 ORDER BY seq',
      [id],
    );
    const out: Float32Array[] = [];
    for (const c of chunks) {
      // Copied out of the pg buffer: a Float32Array view needs 4-byte alignment.
      const all = new Float32Array(new Uint8Array(c.data).buffer);
      for (let r = 0; r < c.rows; r++) out.push(all.slice(r * width, (r + 1) * width));
    }
    return out.length === rows ? out : null;
  }

  /** Stores a dataset's features (one transaction; a set stored meanwhile by another job wins), then trims the cache. */
  async put(tenantId: string, datasetId: string, key: FeatureKey, features: Float32Array[]): Promise<void> {
    const width = features[0]?.length ?? 0;
    const client = await this.db.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const id = newId('fs');
      const inserted = await client.query(
        `INSERT INTO feature_sets (id, dataset_id, tenant_id, base_id, base_sha256, preprocessing, rows, width, bytes)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM datasets WHERE id = $2)
         ON CONFLICT (dataset_id, base_id, base_sha256, preprocessing) DO NOTHING`,
        [id, datasetId, tenantId, key.baseId, key.baseSha256, key.preprocessing, features.length, width, features.length * width * 4],
      );
      if (inserted.rowCount === 1) {
        for (let start = 0, seq = 0; start < features.length; start += CHUNK_ROWS, seq++) {
          const part = features.slice(start, start + CHUNK_ROWS);
          const data = Buffer.alloc(part.length * width * 4);
          part.forEach((f, r) => {
            Buffer.from(f.buffer, f.byteOffset, f.byteLength).copy(data, r * width * 4);
          });
          await client.query('INSERT INTO feature_chunks (set_id, seq, rows, data) VALUES ($1, $2, $3, $4)', [id, seq, part.length, data]);
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => {
        broken = e;
      });
      throw err;
    } finally {
      client.release(broken);
    }
    await this.trim();
  }

  /** Drops the least recently used sets while the cache holds more than its bound. */
  private async trim(): Promise<void> {
    await this.db.pool.query(
      `DELETE FROM feature_sets WHERE id IN (
         SELECT id FROM (SELECT id, sum(bytes) OVER (ORDER BY last_used_at DESC, id) AS running FROM feature_sets) s WHERE running > $1)`,
      [this.maxBytes],
    );
  }
}
