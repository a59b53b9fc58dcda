import { Body, Controller, Delete, Get, Param, Put, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost } from '../http/idempotency.interceptor.js';
import { listOf, PageQuery } from '../http/schemas.js';
import {
  AliasName,
  AliasSchema,
  CreateModelBody,
  ImportVersionBody,
  ModelListQuery,
  ModelSchema,
  SetAliasBody,
  VersionSchema,
  versionView,
} from './models.dto.js';
import { ModelsService } from './models.service.js';

const ModelRef = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._-]+$/, 'must be a model id (mdl_...) or a model name');
const ModelParams = z.object({ id: ModelRef }).strict();
const VersionParams = z.object({ id: ModelRef, n: z.coerce.number().int().min(1).max(1_000_000) }).strict();
const AliasParams = z.object({ id: ModelRef, alias: AliasName }).strict();
const tags = ['Models'];

@Controller('v1/models')
export class ModelsController {
  constructor(private readonly models: ModelsService) {}

  @IdempotentPost()
  @RequireScope('models:write')
  @Endpoint({
    summary: 'Create a model (a name unique within the tenant, and a task)',
    tags,
    body: CreateModelBody,
    response: ModelSchema,
    status: 201,
    errors: [400, 409],
  })
  create(@CurrentTenant() p: TenantPrincipal, @Body() body: z.infer<typeof CreateModelBody>) {
    return this.models.create(p, body);
  }

  @Get()
  @RequireScope('models:read')
  @Endpoint({ summary: 'List models, newest first', tags, query: ModelListQuery, response: listOf(ModelSchema), errors: [400] })
  list(@CurrentTenant() p: TenantPrincipal, @Query() query: z.infer<typeof ModelListQuery>) {
    return this.models.list(p.tenantId, query);
  }

  @Get(':id')
  @RequireScope('models:read')
  @Endpoint({ summary: 'Get a model by id or name', tags, params: ModelParams, response: ModelSchema, errors: [400, 404] })
  get(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof ModelParams>) {
    return this.models.get(p.tenantId, id);
  }

  @Delete(':id')
  @RequireScope('models:write')
  @Endpoint({
    summary: 'Delete a model with its versions, artifacts and aliases',
    tags,
    params: ModelParams,
    response: z.object({ id: z.string(), object: z.literal('model'), deleted: z.literal(true) }),
    errors: [400, 404, 409],
  })
  delete(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof ModelParams>) {
    return this.models.delete(p, id);
  }

  @Get(':id/versions')
  @RequireScope('models:read')
  @Endpoint({
    summary: "A model's versions, newest first",
    tags,
    params: ModelParams,
    query: PageQuery,
    response: listOf(VersionSchema),
    errors: [400, 404],
  })
  versions(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof ModelParams>, @Query() query: z.infer<typeof PageQuery>) {
    return this.models.versions(p.tenantId, id, query);
  }

  @IdempotentPost(':id/versions')
  @RequireScope('models:write')
  @Endpoint({
    summary: 'Import a TF.js layers model trained elsewhere as a new version',
    description:
      'The body carries a model.json with its weights inlined as base64 (`weightData`), as the artifact download gives it, with `input_schema` and `labels` unless it came from this service. ' +
      'Checked here: JSON shape, allowed layers and every initializer, regularizer, constraint and activation class their configs name, weights against their specs (float32, finite), ' +
      'input width against the schema, parameters against `max_model_parameters`, storage against `max_storage_bytes`. ' +
      'Then, before the version exists, a worker loads the model exactly as serving will and predicts once on an input of zeros; the answer waits for it (up to IMPORT_CHECK_TIMEOUT_MS, 30 s by default). ' +
      'A model that cannot load or run is a 400 `model_invalid` naming the layer, class or weight; no worker in time is a 503 `no_worker_available` with Retry-After; ' +
      'more than IMPORT_CHECKS_PER_TENANT imports being checked at once is a 429 `import_checks_in_flight`. A refused import stores nothing: no version, no artifact, no storage, no version number.',
    tags,
    params: ModelParams,
    body: ImportVersionBody,
    response: VersionSchema,
    status: 201,
    errors: [400, 404, 413, 429],
  })
  import(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof ModelParams>,
    @Body() body: z.infer<typeof ImportVersionBody>,
  ) {
    return this.models.import(p, id, body);
  }

  @Get(':id/versions/:n')
  @RequireScope('models:read')
  @Endpoint({ summary: 'Get a version by its number', tags, params: VersionParams, response: VersionSchema, errors: [400, 404] })
  async version(@CurrentTenant() p: TenantPrincipal, @Param() { id, n }: z.infer<typeof VersionParams>) {
    return versionView((await this.models.version(p.tenantId, id, n)).version);
  }

  @Get(':id/versions/:n/artifact')
  @RequireScope('models:read')
  @Endpoint({
    summary: 'Download a version as a TF.js layers model.json with its weights inlined',
    description:
      'The body is byte for byte what was stored: its SHA-256 is the version’s `sha256` (also in the ETag and `X-Checksum-SHA256` headers).',
    tags,
    params: VersionParams,
    response: z.record(z.string(), z.unknown()),
    errors: [400, 404],
  })
  async artifact(@CurrentTenant() p: TenantPrincipal, @Param() { id, n }: z.infer<typeof VersionParams>, @Res() reply: FastifyReply) {
    const a = await this.models.artifact(p.tenantId, id, n);
    return reply
      .type('application/json')
      .header('ETag', `"${a.sha256}"`)
      .header('X-Checksum-SHA256', a.sha256)
      .header('Content-Disposition', `attachment; filename="${a.filename}"`)
      .send(a.bytes);
  }

  @Put(':id/aliases/:alias')
  @RequireScope('models:write')
  @Endpoint({
    summary: 'Point an alias at a version, or split traffic between versions (weights sum to 100)',
    tags,
    params: AliasParams,
    body: SetAliasBody,
    response: AliasSchema,
    errors: [400, 404],
  })
  setAlias(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id, alias }: z.infer<typeof AliasParams>,
    @Body() body: z.infer<typeof SetAliasBody>,
  ) {
    return this.models.setAlias(p, id, alias, body);
  }

  @Delete(':id/aliases/:alias')
  @RequireScope('models:write')
  @Endpoint({
    summary: 'Delete an alias',
    tags,
    params: AliasParams,
    response: z.object({ object: z.literal('model_alias'), model_id: z.string(), name: z.string(), deleted: z.literal(true) }),
    errors: [400, 404],
  })
  deleteAlias(@CurrentTenant() p: TenantPrincipal, @Param() { id, alias }: z.infer<typeof AliasParams>) {
    return this.models.deleteAlias(p, id, alias);
  }
}
