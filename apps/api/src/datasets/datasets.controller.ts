import { ApiError } from '@app/common';
import { Body, Controller, Delete, Get, Param, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost } from '../http/idempotency.interceptor.js';
import { idParam, listOf } from '../http/schemas.js';
import { CreateDatasetBody, DatasetListQuery, DatasetSchema, UploadQuery } from './datasets.dto.js';
import { DatasetsService } from './datasets.service.js';

const DatasetParams = z.object({ id: idParam('ds') }).strict();
const tags = ['Datasets'];

@Controller('v1/datasets')
export class DatasetsController {
  constructor(private readonly datasets: DatasetsService) {}

  @IdempotentPost()
  @RequireScope('datasets:write')
  @Endpoint({
    summary: 'Upload a dataset: JSON records, or a CSV (text/csv) or NDJSON (application/x-ndjson) body with ?name=&task=&label=',
    description:
      'Parsed and validated as it streams. A malformed file, a missing label column, a non-numeric feature, ragged rows, an empty dataset or a single class is a 400 naming the line or column; too many rows or too many bytes a 413.',
    tags,
    body: CreateDatasetBody,
    uploads: ['text/csv', 'application/x-ndjson'],
    uploadQuery: UploadQuery,
    response: DatasetSchema,
    status: 201,
    errors: [400, 413, 415],
  })
  create(@CurrentTenant() tenant: TenantPrincipal, @Req() req: FastifyRequest, @Body() body: unknown, @Query() query: z.infer<typeof UploadQuery>) {
    if (body instanceof Readable) {
      const type = String(req.headers['content-type']).split(';')[0].trim().toLowerCase();
      return this.datasets.createFromUpload(tenant, query, type === 'text/csv' ? 'csv' : 'ndjson', body);
    }
    const { records, ...meta } = body as z.infer<typeof CreateDatasetBody>;
    if (Object.keys(query).length) throw ApiError.invalid('parameter_unknown', 'With a JSON body, send name, task and label in the body, not the query string', Object.keys(query)[0]);
    return this.datasets.createFromRecords(tenant, meta, records);
  }

  @Get()
  @RequireScope('datasets:read')
  @Endpoint({ summary: 'List datasets, newest first', tags, query: DatasetListQuery, response: listOf(DatasetSchema), errors: [400] })
  list(@CurrentTenant() tenant: TenantPrincipal, @Query() query: z.infer<typeof DatasetListQuery>) {
    return this.datasets.list(tenant.tenantId, query);
  }

  @Get(':id')
  @RequireScope('datasets:read')
  @Endpoint({ summary: 'Get a dataset', tags, params: DatasetParams, response: DatasetSchema, errors: [400, 404] })
  get(@CurrentTenant() tenant: TenantPrincipal, @Param() { id }: z.infer<typeof DatasetParams>) {
    return this.datasets.get(tenant.tenantId, id);
  }

  @Delete(':id')
  @RequireScope('datasets:write')
  @Endpoint({
    summary: 'Delete a dataset',
    tags,
    params: DatasetParams,
    response: z.object({ id: z.string(), object: z.literal('dataset'), deleted: z.literal(true) }),
    errors: [400, 404, 409],
  })
  delete(@CurrentTenant() tenant: TenantPrincipal, @Param() { id }: z.infer<typeof DatasetParams>) {
    return this.datasets.delete(tenant.tenantId, id);
  }
}
