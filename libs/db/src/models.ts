import { ApiError, newId } from '@app/common';
import { camelRow, type Database, jsonRow } from './database.js';
import { fromDbTask, toDbTask, type NewDataset } from './datasets.js';
import { type Dataset, type Model, type ModelAlias, type ModelVersion, Prisma } from './generated/client.js';
import { versionView } from './views.js';
import { writeOutbox } from './webhooks.js';
import { pageArgs, type PageQuery } from './pagination.js';
import type { AuditRepository, Tx } from './repositories.js';

export type { Model, ModelAlias, ModelVersion };
export type Task = NewDataset['task'];

const MODEL_DATES = ['createdAt', 'updatedAt'] as const;
const DATASET_DATES = ['createdAt'] as const;

/** One submission's names: its model (id or name), dataset, and the version or alias it serves from. */
export interface TargetLookup {
  tenantId: string;
  model: string;
  datasetId?: string | null;
  version?: number | null;
  alias?: string | null;
}

export interface JobTargets {
  model: Model | null;
  dataset: Dataset | null;
  /** The model's newest version number; null with no version yet. */
  latest: number | null;
  /** The named version, else the newest: null when there is none. */
  version: { number: number; inputSchema: unknown } | null;
  /** Whether the named alias exists. */
  alias: boolean;
}

export interface AliasTarget {
  version: number;
  weight: number;
}

/** What a version records besides its artifact; everything the registry needs to know. */
export interface VersionData {
  artifact: Buffer;
  sha256: string;
  metrics: Prisma.InputJsonValue;
  architecture: Prisma.InputJsonValue;
  hyperparameters: Prisma.InputJsonValue;
  inputSchema: Prisma.InputJsonValue;
  labels: string[] | null;
  parameters: number;
  backend: string;
  datasetId?: string | null;
  baseVersion?: number | null;
}

/** What a training run reports (libs/ml's TrainResult, by shape: libs/db does not depend on TF.js code). */
export interface TrainingOutcome {
  artifact: Uint8Array;
  sha256: string;
  metrics: object;
  architecture: object;
  hyperparameters: object;
  input_schema: object;
  labels: string[] | null;
  parameters: number;
  backend: string;
}

/** The version a training outcome becomes, with its lineage. */
export function versionDataOf(t: TrainingOutcome, lineage: { datasetId?: string | null; baseVersion?: number | null } = {}): VersionData {
  return {
    artifact: Buffer.from(t.artifact),
    sha256: t.sha256,
    metrics: t.metrics as Prisma.InputJsonValue,
    architecture: t.architecture as Prisma.InputJsonValue,
    hyperparameters: t.hyperparameters as Prisma.InputJsonValue,
    inputSchema: t.input_schema as Prisma.InputJsonValue,
    labels: t.labels,
    parameters: t.parameters,
    backend: t.backend,
    datasetId: lineage.datasetId ?? null,
    baseVersion: lineage.baseVersion ?? null,
  };
}

export class ModelNameTaken extends Error {}

/**
 * Models, their immutable numbered versions and aliases. Every method takes the tenant first.
 * Versions are written only here: `createFromTraining` (the job engine, keyed by the job id so a
 * retried job never writes twice) and `createImported` (an upload through the API).
 */
export class ModelRegistry {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditRepository,
  ) {}

  async create(tenantId: string, actorKeyId: string, data: { name: string; task: Task; description?: string | null }): Promise<Model> {
    try {
      return await this.db.prisma.$transaction(async (tx) => {
        const model = await tx.model.create({
          data: { id: newId('mdl'), tenantId, name: data.name, task: toDbTask(data.task), description: data.description ?? null },
        });
        await this.audit.record(tx, {
          actorType: 'tenant',
          actorKeyId,
          tenantId,
          action: 'model.created',
          targetType: 'model',
          targetId: model.id,
          data: { name: model.name },
        });
        return model;
      });
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') throw new ModelNameTaken(data.name);
      throw err;
    }
  }

  /** A model by id, or by name (API.md: `{id}` also accepts the name). */
  async find(tenantId: string, idOrName: string): Promise<Model | null> {
    // Plain pg: every job submission and predict starts here.
    const column = idOrName.startsWith('mdl_') ? 'id' : 'name';
    const { rows } = await this.db.pool.query(`SELECT * FROM models WHERE tenant_id = $1 AND ${column} = $2`, [tenantId, idOrName]);
    return camelRow<Model>(rows[0]);
  }

  async list(tenantId: string, query: PageQuery & { task?: Task }): Promise<Model[]> {
    const cursor = query.starting_after ? await this.db.prisma.model.findFirst({ where: { tenantId, id: query.starting_after } }) : null;
    const args = pageArgs(query, cursor);
    return this.db.prisma.model.findMany({
      ...args,
      where: { ...args.where, tenantId, ...(query.task ? { task: toDbTask(query.task) } : {}) },
    });
  }

  async delete(tenantId: string, actorKeyId: string, modelId: string): Promise<Model | null> {
    return this.db.prisma.$transaction(async (tx) => {
      const model = await tx.model.findFirst({ where: { tenantId, id: modelId } });
      if (!model) return null;
      const { _sum } = await tx.modelVersion.aggregate({ where: { modelId }, _sum: { bytes: true } });
      await tx.model.delete({ where: { id: modelId } });
      await tx.$executeRaw`UPDATE tenant_usage SET storage_bytes = GREATEST(0, storage_bytes - ${_sum.bytes ?? 0}) WHERE tenant_id = ${tenantId}`;
      await this.audit.record(tx, {
        actorType: 'tenant',
        actorKeyId,
        tenantId,
        action: 'model.deleted',
        targetType: 'model',
        targetId: modelId,
        data: { name: model.name },
      });
      return model;
    });
  }

  /**
   * What job submissions name, for many at once in one plain-pg round trip (the API batches the
   * submissions that arrive together): each one's model by id or name, its dataset when it names
   * one, the model's newest version number, the named (else newest) version's input schema, and
   * whether the named alias exists. Answers in the order asked; null for what the tenant does not have.
   */
  async jobTargets(lookups: readonly TargetLookup[]): Promise<JobTargets[]> {
    const col = <K extends keyof TargetLookup>(k: K) => lookups.map((l) => l[k] ?? null);
    const { rows } = await this.db.pool.query<{
      model: Record<string, unknown> | null;
      dataset: Record<string, unknown> | null;
      latest: number | null;
      number: number | null;
      input_schema: unknown;
      alias: boolean;
    }>(
      `SELECT to_jsonb(m) AS model,
              (SELECT to_jsonb(d) FROM datasets d WHERE d.tenant_id = k.tenant_id AND d.id = k.dataset_id) AS dataset,
              n.latest, v.number, v.input_schema,
              (m.id IS NOT NULL AND k.alias IS NOT NULL AND EXISTS (SELECT 1 FROM model_aliases a WHERE a.model_id = m.id AND a.name = k.alias)) AS alias
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY AS k(tenant_id, model, dataset_id, version, alias, ord)
         LEFT JOIN LATERAL (
           SELECT * FROM models mi WHERE mi.tenant_id = k.tenant_id AND mi.id = k.model AND starts_with(k.model, 'mdl_')
           UNION ALL
           SELECT * FROM models mn WHERE mn.tenant_id = k.tenant_id AND mn.name = k.model AND NOT starts_with(k.model, 'mdl_')) m ON true
         LEFT JOIN LATERAL (SELECT max(number) AS latest FROM model_versions mv WHERE mv.tenant_id = k.tenant_id AND mv.model_id = m.id) n ON true
         LEFT JOIN model_versions v ON v.tenant_id = k.tenant_id AND v.model_id = m.id AND v.number = coalesce(k.version, n.latest)
        ORDER BY k.ord`,
      [col('tenantId'), col('model'), col('datasetId'), col('version'), col('alias')],
    );
    return rows.map((r) => ({
      model: r.model?.id ? jsonRow<Model>(r.model, MODEL_DATES) : null,
      dataset: jsonRow<Dataset>(r.dataset, DATASET_DATES),
      latest: r.latest,
      version: r.number === null ? null : { number: r.number, inputSchema: r.input_schema },
      alias: r.alias,
    }));
  }

  async extras(modelIds: string[]): Promise<Map<string, { latest: number | null; aliases: ModelAlias[] }>> {
    const [latest, aliases] = await Promise.all([
      this.db.prisma.modelVersion.groupBy({ by: ['modelId'], where: { modelId: { in: modelIds } }, _max: { number: true } }),
      this.db.prisma.modelAlias.findMany({ where: { modelId: { in: modelIds } }, orderBy: { name: 'asc' } }),
    ]);
    const out = new Map(modelIds.map((id) => [id, { latest: null as number | null, aliases: [] as ModelAlias[] }]));
    for (const l of latest) out.get(l.modelId)!.latest = l._max.number;
    for (const a of aliases) out.get(a.modelId)!.aliases.push(a);
    return out;
  }

  async versions(tenantId: string, modelId: string, query: PageQuery): Promise<ModelVersion[]> {
    let below: number | undefined;
    if (query.starting_after) {
      const cursor = await this.db.prisma.modelVersion.findFirst({
        where: { tenantId, modelId, id: query.starting_after },
        select: { number: true },
      });
      if (!cursor)
        throw ApiError.invalid(
          'invalid_cursor',
          `starting_after '${query.starting_after}' is not a version of this model`,
          'starting_after',
        );
      below = cursor.number;
    }
    return this.db.prisma.modelVersion.findMany({
      where: { tenantId, modelId, ...(below !== undefined ? { number: { lt: below } } : {}) },
      orderBy: { number: 'desc' },
      take: query.limit + 1,
    });
  }

  version(tenantId: string, modelId: string, number: number): Promise<ModelVersion | null> {
    return this.db.prisma.modelVersion.findFirst({ where: { tenantId, modelId, number } });
  }

  async artifact(tenantId: string, versionId: string): Promise<Buffer | null> {
    const row = await this.db.prisma.modelArtifact.findFirst({ where: { versionId, version: { tenantId } } });
    return row ? Buffer.from(row.data) : null;
  }

  /**
   * The version a training job produced. Idempotent: a second call for the same job returns the
   * version the first one wrote, so a job that runs twice still makes exactly one version.
   */
  async createFromTraining(
    tenantId: string,
    modelId: string,
    trainingJobId: string,
    data: VersionData,
  ): Promise<{ version: ModelVersion; created: boolean }> {
    const existing = await this.db.prisma.modelVersion.findUnique({ where: { trainingJobId } });
    if (existing) return { version: existing, created: false };
    try {
      const version = await this.db.prisma.$transaction(async (tx) => {
        // Storage is counted, not refused: the compute is spent, and the quota stops new uploads and jobs.
        await tx.$executeRaw`UPDATE tenant_usage SET storage_bytes = storage_bytes + ${data.artifact.length} WHERE tenant_id = ${tenantId}`;
        return this.insertVersion(tx, tenantId, modelId, data, {
          trainingJobId,
          source: 'training',
          actorKeyId: 'system',
          actorType: 'system',
        });
      });
      return { version, created: true };
    } catch (err) {
      // The same job finishing twice at once: the unique training_job_id let only one write.
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
        const version = await this.db.prisma.modelVersion.findUnique({ where: { trainingJobId } });
        if (version) return { version, created: false };
      }
      throw err;
    }
  }

  /** A version imported from a TF.js layers model trained elsewhere. */
  createImported(
    tenantId: string,
    actorKeyId: string,
    modelId: string,
    data: VersionData,
    maxStorageBytes: number,
  ): Promise<ModelVersion | null> {
    return this.db.prisma.$transaction(async (tx) => {
      const room =
        await tx.$executeRaw`UPDATE tenant_usage SET storage_bytes = storage_bytes + ${data.artifact.length} WHERE tenant_id = ${tenantId} AND storage_bytes + ${data.artifact.length} <= ${maxStorageBytes}`;
      if (room !== 1) return null;
      return this.insertVersion(tx, tenantId, modelId, data, { trainingJobId: null, source: 'import', actorKeyId, actorType: 'tenant' });
    });
  }

  async setAlias(tenantId: string, actorKeyId: string, modelId: string, name: string, targets: AliasTarget[]): Promise<ModelAlias> {
    return this.db.prisma.$transaction(async (tx) => {
      const alias = await tx.modelAlias.upsert({
        where: { modelId_name: { modelId, name } },
        create: { modelId, name, versions: targets as unknown as Prisma.InputJsonValue },
        update: { versions: targets as unknown as Prisma.InputJsonValue },
      });
      await this.audit.record(tx, {
        actorType: 'tenant',
        actorKeyId,
        tenantId,
        action: 'model.alias.set',
        targetType: 'model',
        targetId: modelId,
        data: { alias: name, versions: targets as unknown as Prisma.InputJsonValue },
      });
      return alias;
    });
  }

  async deleteAlias(tenantId: string, actorKeyId: string, modelId: string, name: string): Promise<boolean> {
    return this.db.prisma.$transaction(async (tx) => {
      const { count } = await tx.modelAlias.deleteMany({ where: { modelId, name, model: { tenantId } } });
      if (count === 0) return false;
      await this.audit.record(tx, {
        actorType: 'tenant',
        actorKeyId,
        tenantId,
        action: 'model.alias.deleted',
        targetType: 'model',
        targetId: modelId,
        data: { alias: name },
      });
      return true;
    });
  }

  async existingNumbers(modelId: string, numbers: number[]): Promise<Set<number>> {
    const rows = await this.db.prisma.modelVersion.findMany({ where: { modelId, number: { in: numbers } }, select: { number: true } });
    return new Set(rows.map((r) => r.number));
  }

  private async insertVersion(
    tx: Tx,
    tenantId: string,
    modelId: string,
    data: VersionData,
    how: { trainingJobId: string | null; source: string; actorKeyId: string; actorType: 'tenant' | 'system' },
  ): Promise<ModelVersion> {
    // The model row's lock numbers versions one at a time: 1, 2, 3 … with no gaps or twins.
    const locked = await tx.$queryRaw<
      Array<{ id: string }>
    >`SELECT id FROM models WHERE id = ${modelId} AND tenant_id = ${tenantId} FOR UPDATE`;
    if (locked.length === 0) throw new Error(`model ${modelId} of tenant ${tenantId} does not exist`);
    const { _max } = await tx.modelVersion.aggregate({ where: { modelId }, _max: { number: true } });
    const version = await tx.modelVersion.create({
      data: {
        id: newId('mv'),
        tenantId,
        modelId,
        number: (_max.number ?? 0) + 1,
        metrics: data.metrics,
        architecture: data.architecture,
        hyperparameters: data.hyperparameters,
        inputSchema: data.inputSchema,
        labels: data.labels ?? Prisma.DbNull,
        parameters: data.parameters,
        bytes: BigInt(data.artifact.length),
        sha256: data.sha256,
        backend: data.backend,
        trainingJobId: how.trainingJobId,
        datasetId: data.datasetId ?? null,
        baseVersion: data.baseVersion ?? null,
        source: how.source,
        artifact: { create: { data: new Uint8Array(data.artifact) } },
      },
    });
    await tx.model.update({ where: { id: modelId }, data: { updatedAt: new Date() } });
    await this.audit.record(tx, {
      actorType: how.actorType,
      actorKeyId: how.actorKeyId,
      tenantId,
      action: 'model.version.created',
      targetType: 'model_version',
      targetId: version.id,
      data: { model_id: modelId, version: version.number, source: how.source, training_job_id: how.trainingJobId },
    });
    await writeOutbox(tx, { tenantId, type: 'model.version.created', data: versionView(version) });
    return version;
  }
}

export { fromDbTask };
