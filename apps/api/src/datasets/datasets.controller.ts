import { ApiError } from '@app/common';
import { Body, Controller, Delete, Get, Param, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost } from '../http/idempotency.interceptor.js';
import { idParam, listOf } from '../http/schemas.js';
import { mediaType, STREAMED_UPLOAD_TYPES } from '../http/upload-types.js';
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
    summary:
      'Upload a dataset: JSON records, or a CSV (text/csv), NDJSON (application/x-ndjson) or zip (application/zip) body with ?name=&task=&label=',
    description: [
      'Parsed and validated as it streams. A malformed file, a missing label column, a non-numeric feature, ragged rows, an empty dataset or a single class is a 400 naming the line or column; too many rows or too many bytes a 413.',
      'Images (task image-classification): records {image: "<base64 PNG or JPEG>", label} in JSON or NDJSON, or an application/zip body with one folder per class (cat/0001.jpg: the folder is the label; a single top-level folder wrapping the class folders is skipped; __MACOSX/ and dotfiles are ignored).',
      'Every image is decoded at upload. Refused with 400 naming the entry, line or record: paths with ../ or absolute paths, symlinks, encrypted entries, compression other than stored and deflate, files outside the class folders, an empty class folder, a single class, invalid base64, a file that is not a PNG or JPEG, an undecodable or truncated image, an image over the pixel limit (checked from its header). Refused with 413 naming the entry: an entry that inflates past the storage quota, the archive cap or the compression-ratio limit (a zip bomb), more images than max_dataset_rows.',
      "A zip dataset stores rows {file, image, label} (image: the file's bytes in base64); its bytes are the images' bytes and its sha256 the archive's.",
    ].join(' '),
    tags,
    body: CreateDatasetBody,
    uploads: [...STREAMED_UPLOAD_TYPES],
    uploadQuery: UploadQuery,
    response: DatasetSchema,
    status: 201,
    errors: [400, 413, 415],
  })
  create(
    @CurrentTenant() tenant: TenantPrincipal,
    @Req() req: FastifyRequest,
    @Body() body: unknown,
    @Query() query: z.infer<typeof UploadQuery>,
  ) {
    if (body instanceof Readable) {
      const type = mediaType(req.headers['content-type']);
      if (type === 'application/zip') return this.datasets.createFromArchive(tenant, query, body);
      return this.datasets.createFromUpload(tenant, query, type === 'text/csv' ? 'csv' : 'ndjson', body);
    }
    const { records, ...meta } = body as z.infer<typeof CreateDatasetBody>;
    if (Object.keys(query).length)
      throw ApiError.invalid(
        'parameter_unknown',
        'With a JSON body, send name, task and label in the body, not the query string',
        Object.keys(query)[0],
      );
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
