import { describe, expect, it } from '@jest/globals';
import { FileRepository, StorageFull } from '@app/db';
import { eventsOf, publishedOnce, queuedJob, runningJob, useMedium, withoutWrites, createTenant } from '../support.js';

const m = useMedium();
const rows = (done: number) => ({ percent: done / 10, rows_done: done, rows_total: 1000, eta_seconds: 1 });

/** A tenant with storage counted (as datasets and files need) and a running job with its output file. */
async function batchJob(maxStorage = 1_000_000) {
  const t = await createTenant(m.db);
  await m.db.pool.query('INSERT INTO tenant_usage (tenant_id, storage_bytes) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING', [t.id]);
  const job = await runningJob(m, t);
  const files = new FileRepository(m.db);
  const file = await files.forJob(job, 'ndjson', false, 1);
  const append = (n: number, data: Buffer) => async (client: Parameters<FileRepository['append']>[0]) =>
    files.append(client, file, await files.committed(file.id), n, data, maxStorage);
  return { t, job, files, file, append };
}

async function storage(tenantId: string): Promise<number> {
  const { rows: r } = await m.db.pool.query('SELECT storage_bytes FROM tenant_usage WHERE tenant_id = $1', [tenantId]);
  return Number(r[0].storage_bytes);
}

describe('checkpoint: a batch prediction commits a chunk with its progress', () => {
  it('with an event: the progress, the chunk, its storage and job.progress in one commit, published once', async () => {
    const { t, job, files, file, append } = await batchJob();
    const data = Buffer.from('{"row":0}\n{"row":1}\n');
    expect(await m.lifecycle.checkpoint(job.id, rows(2), rows(2), append(2, data))).toEqual({ cancelRequested: false });
    expect((await m.lifecycle.read(job.id))!.progress).toEqual(rows(2));
    expect((await eventsOf(m.db, job.id)).at(-1)).toMatchObject({ type: 'job.progress', data: rows(2) });
    expect((await publishedOnce(m)).event).toMatchObject({ type: 'job.progress' });
    expect(await files.committed(file.id)).toEqual({ rows: 2, bytes: data.length, chunks: 1 });
    expect(await storage(t.id)).toBe(data.length);
  });

  it('without an event (throttled): the progress and the chunk, no event, nothing published', async () => {
    const { job, files, file, append } = await batchJob();
    const before = (await eventsOf(m.db, job.id)).length;
    await m.lifecycle.checkpoint(job.id, rows(1), null, append(1, Buffer.from('a\n')));
    await m.lifecycle.checkpoint(job.id, rows(2), null, append(1, Buffer.from('b\n')));
    expect((await m.lifecycle.read(job.id))!.progress).toEqual(rows(2));
    expect(await eventsOf(m.db, job.id)).toHaveLength(before);
    expect(m.effects.list).toEqual([]);
    expect(await files.committed(file.id)).toEqual({ rows: 2, bytes: 4, chunks: 2 });
    const parts: Buffer[] = [];
    for await (const part of files.content(file.id, 0, 100)) parts.push(part);
    const text = Buffer.concat(parts).toString();
    expect(text).toBe('a\nb\n');
  });

  it('a chunk past max_storage_bytes is StorageFull and nothing of the checkpoint is written', async () => {
    const { t, job, append } = await batchJob(10);
    await m.lifecycle.checkpoint(job.id, rows(1), null, append(1, Buffer.from('12345\n')));
    for (const event of [null, rows(2)]) {
      await expect(
        withoutWrites(m, t.id, () => m.lifecycle.checkpoint(job.id, rows(2), event, append(1, Buffer.from('678910\n')))),
      ).rejects.toBeInstanceOf(StorageFull);
      expect((await m.lifecycle.read(job.id))!.progress).toEqual(rows(1));
    }
    expect(await storage(t.id)).toBe(6);
  });

  it('says when a cancel was asked for', async () => {
    const { job, append } = await batchJob();
    await m.db.pool.query('UPDATE jobs SET cancel_requested = true WHERE id = $1', [job.id]);
    expect(await m.lifecycle.checkpoint(job.id, rows(1), null, append(1, Buffer.from('x\n')))).toEqual({ cancelRequested: true });
  });

  it('is refused for a job not running: null, the write never called', async () => {
    const t = await createTenant(m.db);
    const job = await queuedJob(m.db, t);
    let called = false;
    const write = async () => {
      called = true;
    };
    for (const event of [null, rows(1)]) {
      expect(await withoutWrites(m, t.id, () => m.lifecycle.checkpoint(job.id, rows(1), event, write))).toBeNull();
    }
    expect(called).toBe(false);
  });
});
