import { describe, expect, it } from '@jest/globals';
import { FileRepository } from '@app/db';
import { createHash } from 'node:crypto';
import { createTenant, runningJob, useMedium } from './support.js';

// The medium tier: libs/db's FileRepository against a real PostgreSQL: what the reconciler does
// with output files (the sweeper, and files a job left unfinished).
const m = useMedium();
const files = () => new FileRepository(m.db);

async function storage(tenantId: string): Promise<number> {
  const { rows } = await m.db.pool.query('SELECT storage_bytes FROM tenant_usage WHERE tenant_id = $1', [tenantId]);
  return Number(rows[0]?.storage_bytes ?? 0);
}

/** A running job of a tenant with storage counted, and its file holding `lines`. */
async function jobWithFile(lines: string[]) {
  const t = await createTenant(m.db);
  await m.db.pool.query('INSERT INTO tenant_usage (tenant_id, storage_bytes) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING', [t.id]);
  const job = await runningJob(m, t);
  const repo = files();
  const file = await repo.forJob(job, 'ndjson', false, 2);
  for (const line of lines) {
    await m.lifecycle.checkpoint(job.id, {}, null, async (client) =>
      repo.append(client, file, await repo.committed(file.id), 1, Buffer.from(line), 1_000_000),
    );
  }
  return { t, job, file, repo };
}

describe('output files: the reconciler’s side', () => {
  it('finishes the file of a job whose worker was lost for good, and names it in the job’s result', async () => {
    const { job, file, repo } = await jobWithFile(['{"row":0}\n', '{"row":1}\n']);
    await m.lifecycle.failLost(job);
    expect(await repo.get(job.tenantId, file.id)).toBeNull();
    expect(await repo.finishOrphans(3600)).toBe(1);
    const ready = (await repo.get(job.tenantId, file.id))!;
    expect(ready).toMatchObject({ status: 'ready', rows: 2, sha256: createHash('sha256').update('{"row":0}\n{"row":1}\n').digest('hex') });
    expect((await m.lifecycle.read(job.id))!.result).toEqual({ output_file_id: file.id, rows: 2, format: 'ndjson', version: 2 });
    // Once finished it is no orphan any more; a running job's file never is one.
    expect(await repo.finishOrphans(3600)).toBe(0);
    const other = await jobWithFile(['x\n']);
    expect(await other.repo.finishOrphans(3600)).toBe(0);
  });

  it('sweeps expired files only, giving their bytes back; a file being written has no expiry', async () => {
    const { t, job, file, repo } = await jobWithFile(['abc\n', 'defg\n']);
    expect(await storage(t.id)).toBe(9);
    await repo.finish(null, file.id, 'x', 3600);
    const writing = await jobWithFile(['zz\n']);
    await m.db.pool.query(`UPDATE files SET expires_at = now() - interval '1 second' WHERE id = $1`, [file.id]);
    expect(await repo.get(job.tenantId, file.id)).toBeNull();
    expect(await repo.sweep()).toBeGreaterThanOrEqual(1);
    expect(await storage(t.id)).toBe(0);
    const { rows } = await m.db.pool.query('SELECT count(*)::int AS n FROM file_chunks WHERE file_id = $1', [file.id]);
    expect(rows[0].n).toBe(0);
    expect((await repo.committed(writing.file.id)).rows).toBe(1);
    expect(await storage(writing.t.id)).toBe(3);
  });

  it('gives a deleted file’s bytes back, and deletes only the tenant’s own ready files', async () => {
    const { t, file, repo } = await jobWithFile(['12345\n']);
    expect(await repo.delete(t.id, file.id)).toBe(false);
    await repo.finish(null, file.id, 'x', 3600);
    const stranger = await createTenant(m.db);
    expect(await repo.delete(stranger.id, file.id)).toBe(false);
    expect(await repo.delete(t.id, file.id)).toBe(true);
    expect(await storage(t.id)).toBe(0);
  });
});
