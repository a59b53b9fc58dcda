import { describe, expect, it } from '@jest/globals';
import { newId } from '@app/common';
import { ModelRegistry } from '@app/db';
import { createTenant, useMedium } from './support.js';

// ModelRegistry.jobTargets: the one read that validates a batch of job submissions.
const m = useMedium();
const registry = () => new ModelRegistry(m.db, null as never);

async function addVersion(tenantId: string, modelId: string, number: number, inputSchema: object): Promise<void> {
  await m.db.pool.query(
    `INSERT INTO model_versions (id, tenant_id, model_id, number, architecture, input_schema, parameters, bytes, sha256, backend)
     VALUES ($1, $2, $3, $4, '{}', $5, 1, 1, 'x', 'cpu')`,
    [newId('mv'), tenantId, modelId, number, inputSchema],
  );
}

async function addDataset(tenantId: string): Promise<string> {
  const id = newId('ds');
  await m.db.pool.query(
    `INSERT INTO datasets (id, tenant_id, name, task, label, format, rows, columns, bytes, sha256)
     VALUES ($1, $2, 'd', 'classification', 'label', 'json', 1, '[]', 1, 'x')`,
    [id, tenantId],
  );
  return id;
}

describe('jobTargets', () => {
  it('answers each lookup in order: the model by id or name, the dataset, the newest and the named version, the alias', async () => {
    const a = await createTenant(m.db);
    const b = await createTenant(m.db);
    await addVersion(a.id, a.modelId, 1, { features: ['x'] });
    await addVersion(a.id, a.modelId, 2, { features: ['x', 'y'] });
    await m.db.pool.query(`INSERT INTO model_aliases (model_id, name, versions, updated_at) VALUES ($1, 'prod', '[]', now())`, [a.modelId]);
    const ds = await addDataset(a.id);
    const found = await registry().jobTargets([
      { tenantId: a.id, model: 'm', datasetId: ds },
      { tenantId: a.id, model: a.modelId, version: 1, alias: 'prod' },
      { tenantId: a.id, model: 'm', version: 7, alias: 'staging' },
      { tenantId: b.id, model: a.modelId, datasetId: ds },
      { tenantId: b.id, model: 'm' },
      { tenantId: a.id, model: 'nope' },
    ]);
    expect(found.map((f) => [f.model?.id ?? null, f.dataset?.id ?? null, f.latest, f.version?.number ?? null, f.alias])).toEqual([
      [a.modelId, ds, 2, 2, false],
      [a.modelId, null, 2, 1, true],
      [a.modelId, null, 2, null, false],
      [null, null, null, null, false],
      [b.modelId, null, null, null, false],
      [null, null, null, null, false],
    ]);
    expect(found[0].version?.inputSchema).toEqual({ features: ['x', 'y'] });
    expect(found[0].model?.createdAt).toBeInstanceOf(Date);
    expect(found[0].dataset?.createdAt).toBeInstanceOf(Date);
  });

  it('reads a name that looks like an id as an id only (as a single lookup would)', async () => {
    const t = await createTenant(m.db);
    await m.db.pool.query(`UPDATE models SET name = 'mdl_named' WHERE id = $1`, [t.modelId]);
    const [found] = await registry().jobTargets([{ tenantId: t.id, model: 'mdl_named' }]);
    expect(found.model).toBeNull();
  });

  it('answers an empty batch with nothing', async () => {
    expect(await registry().jobTargets([])).toEqual([]);
  });
});
