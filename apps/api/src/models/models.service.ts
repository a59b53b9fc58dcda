import { ApiError } from '@app/common';
import { fromDbTask, JobRepository, type Model, ModelNameTaken, ModelRegistry, type PageQuery, type Task, toPage } from '@app/db';
import { importArtifact, importLayersModel, type ImportMeta, type ImportResult } from '@app/ml';
import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import type { TenantPrincipal } from '../auth/principal.js';
import { mlErrorToApi } from '../http/ml-errors.js';
import { InvalidationBus } from '../infra/invalidation-bus.js';
import { UsageCache } from '../me/usage-cache.js';
import { LoadCheckClient } from './load-check.js';
import { aliasView, type CreateModelBody, type ImportVersionBody, modelView, type SetAliasBody, versionView } from './models.dto.js';

@Injectable()
export class ModelsService {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly jobs: JobRepository,
    private readonly usage: UsageCache,
    private readonly bus: InvalidationBus,
    private readonly loadCheck: LoadCheckClient,
  ) {}

  async create(p: TenantPrincipal, body: z.infer<typeof CreateModelBody>) {
    try {
      const model = await this.registry.create(p.tenantId, p.keyId, body);
      return modelView(model, { latest: null, aliases: [] });
    } catch (err) {
      if (err instanceof ModelNameTaken)
        throw new ApiError(409, 'invalid_request_error', 'model_name_taken', `A model named '${body.name}' already exists`, 'name');
      throw err;
    }
  }

  async list(tenantId: string, query: PageQuery & { task?: Task }) {
    const rows = await this.registry.list(tenantId, query);
    const page = toPage(rows, query.limit, (m) => m);
    const extras = await this.registry.extras(page.data.map((m) => m.id));
    return { ...page, data: page.data.map((m) => modelView(m, extras.get(m.id)!)) };
  }

  /** The model by id or name, or 404. */
  async model(tenantId: string, idOrName: string): Promise<Model> {
    const model = await this.registry.find(tenantId, idOrName);
    if (!model) throw ApiError.notFound('model', idOrName);
    return model;
  }

  async get(tenantId: string, idOrName: string) {
    const model = await this.model(tenantId, idOrName);
    return modelView(model, (await this.registry.extras([model.id])).get(model.id)!);
  }

  async delete(p: TenantPrincipal, idOrName: string) {
    const model = await this.model(p.tenantId, idOrName);
    if (await this.jobs.inUse(p.tenantId, { modelId: model.id })) {
      throw new ApiError(
        409,
        'invalid_request_error',
        'model_in_use',
        `Model '${model.name}' has queued or running jobs; cancel them or wait for them to end`,
      );
    }
    await this.registry.delete(p.tenantId, p.keyId, model.id);
    await this.usage.changed(p.tenantId);
    return { id: model.id, object: 'model' as const, deleted: true as const };
  }

  async versions(tenantId: string, idOrName: string, query: PageQuery) {
    const model = await this.model(tenantId, idOrName);
    return toPage(await this.registry.versions(tenantId, model.id, query), query.limit, versionView);
  }

  async version(tenantId: string, idOrName: string, number: number) {
    const model = await this.model(tenantId, idOrName);
    const version = await this.registry.version(tenantId, model.id, number);
    if (!version) throw ApiError.notFound(`version of model '${model.name}'`, String(number), 'version');
    return { model, version };
  }

  async artifact(tenantId: string, idOrName: string, number: number) {
    const { model, version } = await this.version(tenantId, idOrName, number);
    const bytes = await this.registry.artifact(tenantId, version.id);
    if (!bytes) throw ApiError.notFound('artifact', version.id);
    return { bytes, sha256: version.sha256, filename: `${model.name}-v${version.number}.model.json` };
  }

  /**
   * Static checks first (libs/ml, no TF.js: layers and every class a config names, weights, widths,
   * parameters, storage), then one load by a worker (LoadCheckClient); only a model that loads and
   * predicts becomes a version, numbered then, so a refused import leaves nothing behind.
   */
  async import(p: TenantPrincipal, idOrName: string, body: z.infer<typeof ImportVersionBody>) {
    const model = await this.model(p.tenantId, idOrName);
    const task = fromDbTask(model.task);
    let imported: ImportResult;
    try {
      const own = (body.model.userDefinedMetadata as { aiaas?: unknown } | undefined)?.aiaas;
      if (own && !body.input_schema) {
        // A model.json downloaded from this service: it carries its own preprocessing.
        const checked = importArtifact(body.model, p.quotas.max_model_parameters);
        if (checked.task !== task)
          throw ApiError.invalid(
            'task_mismatch',
            `The model was trained for ${checked.task}; model '${model.name}' is for ${task}`,
            'model',
          );
        imported = checked;
      } else {
        if (!body.input_schema)
          throw ApiError.invalid('parameter_missing', 'input_schema is required for a model.json trained elsewhere', 'input_schema');
        const meta: ImportMeta = {
          task,
          input_schema: body.input_schema,
          labels: body.labels ?? null,
          standardization: body.standardization,
        };
        imported = importLayersModel(body.model, meta, p.quotas.max_model_parameters);
      }
    } catch (err) {
      throw mlErrorToApi(err, p, 'model');
    }
    const tooBig = () =>
      new ApiError(
        413,
        'quota_exceeded_error',
        'max_storage_bytes',
        `This model would take the tenant past its storage quota (max_storage_bytes = ${p.quotas.max_storage_bytes})`,
      );
    // Refused before a worker is asked to load it; the insert below checks again, atomically.
    if ((await this.usage.get(p.tenantId)).storageBytes + imported.artifact.length > p.quotas.max_storage_bytes) throw tooBig();
    await this.loadCheck.verify(p.tenantId, model.id, imported.artifact);
    const version = await this.registry.createImported(
      p.tenantId,
      p.keyId,
      model.id,
      {
        artifact: imported.artifact,
        sha256: imported.sha256,
        metrics: {},
        architecture: imported.architecture as object,
        hyperparameters: {},
        inputSchema: imported.input_schema as object,
        labels: imported.labels,
        parameters: imported.parameters,
        backend: 'imported',
      },
      p.quotas.max_storage_bytes,
    );
    if (!version) throw tooBig();
    await this.usage.changed(p.tenantId);
    return versionView(version);
  }

  async setAlias(p: TenantPrincipal, idOrName: string, name: string, body: z.infer<typeof SetAliasBody>) {
    if (name === 'latest')
      throw ApiError.invalid('alias_reserved', "The alias 'latest' always points to the newest version and cannot be set", 'alias');
    const model = await this.model(p.tenantId, idOrName);
    const targets = body.versions ?? [{ version: body.version!, weight: 100 }];
    const total = targets.reduce((n, t) => n + t.weight, 0);
    if (total !== 100)
      throw ApiError.invalid('alias_weights_invalid', `The weights of a traffic split must sum to 100; these sum to ${total}`, 'versions');
    const numbers = targets.map((t) => t.version);
    if (new Set(numbers).size !== numbers.length)
      throw ApiError.invalid('alias_weights_invalid', 'A version appears twice in the split', 'versions');
    const existing = await this.registry.existingNumbers(model.id, numbers);
    const missing = numbers.filter((n) => !existing.has(n));
    if (missing.length) {
      throw ApiError.invalid(
        'version_missing',
        `Model '${model.name}' has no version ${missing.join(', ')}`,
        body.versions ? `versions[${numbers.indexOf(missing[0])}].version` : 'version',
      );
    }
    const alias = await this.registry.setAlias(p.tenantId, p.keyId, model.id, name, targets);
    // Every API instance serves predictions through the new split from now on.
    await this.bus.publish({ modelOf: model.id });
    return aliasView(alias);
  }

  async deleteAlias(p: TenantPrincipal, idOrName: string, name: string) {
    if (name === 'latest') throw ApiError.invalid('alias_reserved', "The alias 'latest' cannot be deleted", 'alias');
    const model = await this.model(p.tenantId, idOrName);
    if (!(await this.registry.deleteAlias(p.tenantId, p.keyId, model.id, name)))
      throw ApiError.notFound(`alias of model '${model.name}'`, name, 'alias');
    await this.bus.publish({ modelOf: model.id });
    return { object: 'model_alias' as const, model_id: model.id, name, deleted: true as const };
  }
}
