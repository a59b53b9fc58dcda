import { ApiError, pickByWeight, type WeightedVersion } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { type Model, ModelRegistry } from '@app/db';
import { Inject, Injectable } from '@nestjs/common';
import { InvalidationBus } from '../infra/invalidation-bus.js';

/** A model as predictions see it: its newest version number and its aliases (traffic splits). */
interface ServedModel {
  model: Model;
  latest: number | null;
  aliases: Map<string, WeightedVersion[]>;
}

/** What a sync prediction needs of a version: which one it is and the columns it reads. */
export interface ServedVersion {
  id: string;
  number: number;
  inputSchema: unknown;
}

/** The version that answers a request, and the alias it came through (null when named by number). */
export interface ServingTarget {
  model: Model;
  version: ServedVersion;
  alias: string | null;
}

interface Entry<T> {
  value: Promise<T | null>;
  until: number;
  tenantId: string;
  /** Set once the lookup resolved, so invalidation by model id finds entries keyed by name too. */
  modelId?: string;
}

/** Versions never change once written: only a deleted model (pushed, like every change) ends them sooner. */
const VERSION_TTL_MS = 60_000;

/**
 * Resolves `POST /v1/models/{id}/predict`'s model, version and alias without a PostgreSQL read per
 * request: lookups are kept per API instance for PREDICT_LOOKUP_TTL_MS (versions longer, they are
 * immutable), and dropped on every instance as soon as something changes them: an alias set or
 * deleted (`modelOf`), or anything that moves the tenant's usage (`usageOf`: a version trained or
 * imported, a model deleted). The TTL only bounds what a missed message could cost. Concurrent
 * misses share one query; a lookup that finds nothing is not kept (a model created a moment later
 * is found at once).
 */
@Injectable()
export class ServingCatalog {
  private readonly models = new Map<string, Entry<ServedModel>>();
  private readonly versions = new Map<string, Entry<ServedVersion>>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistry,
    bus: InvalidationBus,
  ) {
    bus.listen(
      (change) => {
        // A lookup still in flight (no model id yet) may have read the state before the change: dropped too.
        if (change.modelOf) this.forget((e) => e.modelId === undefined || e.modelId === change.modelOf);
        const tenant = change.usageOf ?? change.tenantId;
        if (tenant) this.forget((e) => e.tenantId === tenant);
      },
      () => this.forget(() => true),
    );
  }

  /** The version that serves a request: `version`, else `alias` (default `latest`; a split picks by weight). */
  async resolve(tenantId: string, ref: string, version: number | undefined, alias: string | undefined): Promise<ServingTarget> {
    const served = await this.model(tenantId, ref);
    if (!served) throw ApiError.notFound('model', ref);
    const { model } = served;
    if (version !== undefined && alias !== undefined)
      throw ApiError.invalid('parameter_invalid', 'Give version or alias, not both', 'alias');
    let number: number;
    let via: string | null = null;
    if (version !== undefined) {
      number = version;
    } else {
      via = alias ?? 'latest';
      if (served.latest === null)
        throw ApiError.invalid('model_not_trained', `Model '${model.name}' has no version yet: train it first`, 'model');
      if (via === 'latest') {
        number = served.latest;
      } else {
        const split = served.aliases.get(via);
        if (!split) throw ApiError.invalid('alias_missing', `Model '${model.name}' has no alias '${via}'`, 'alias');
        number = pickByWeight(split);
      }
    }
    const v = await this.version(tenantId, model.id, number);
    if (!v) throw ApiError.invalid('version_missing', `Model '${model.name}' has no version ${number}`, 'version');
    return { model, version: v, alias: via };
  }

  private model(tenantId: string, ref: string): Promise<ServedModel | null> {
    return this.cached(this.models, `${tenantId}|${ref}`, tenantId, this.config.predictLookupTtlMs, async () => {
      const model = await this.registry.find(tenantId, ref);
      if (!model) return null;
      const extras = (await this.registry.extras([model.id])).get(model.id)!;
      const aliases = new Map(extras.aliases.map((a) => [a.name, a.versions as unknown as WeightedVersion[]]));
      return { modelId: model.id, value: { model, latest: extras.latest, aliases } };
    });
  }

  private version(tenantId: string, modelId: string, number: number): Promise<ServedVersion | null> {
    return this.cached(this.versions, `${modelId}|${number}`, tenantId, VERSION_TTL_MS, async () => {
      const v = await this.registry.version(tenantId, modelId, number);
      return v ? { modelId, value: { id: v.id, number: v.number, inputSchema: v.inputSchema } } : null;
    });
  }

  private cached<T>(
    map: Map<string, Entry<T>>,
    key: string,
    tenantId: string,
    ttlMs: number,
    load: () => Promise<{ modelId: string; value: T } | null>,
  ): Promise<T | null> {
    const now = Date.now();
    const hit = map.get(key);
    if (hit && hit.until > now) return hit.value;
    const entry: Entry<T> = { tenantId, until: now + ttlMs, value: Promise.resolve(null) };
    entry.value = load().then(
      (found) => {
        if (found) entry.modelId = found.modelId;
        else if (map.get(key) === entry) map.delete(key);
        return found?.value ?? null;
      },
      (err: unknown) => {
        if (map.get(key) === entry) map.delete(key);
        throw err;
      },
    );
    map.set(key, entry);
    return entry.value;
  }

  private forget(match: (e: Entry<unknown>) => boolean): void {
    for (const map of [this.models, this.versions] as Array<Map<string, Entry<unknown>>>) {
      for (const [key, e] of map) if (match(e)) map.delete(key);
    }
  }
}
