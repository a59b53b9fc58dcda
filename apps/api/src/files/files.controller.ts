import { Controller, Delete, Get, Param, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { idParam, listOf, PageQuery, Timestamp } from '../http/schemas.js';
import { byteRange, fileName, FilesService, fileView } from './files.service.js';

const FileParams = z.object({ id: idParam('file') }).strict();
const tags = ['Files'];

export const FileSchema = z
  .object({
    object: z.literal('file'),
    id: z.string(),
    purpose: z.literal('batch_output'),
    filename: z.string(),
    bytes: z.number(),
    rows: z.number().describe('rows of the dataset in the file, in dataset order from row 0'),
    sha256: z.string().describe('of the content; also its ETag'),
    content_type: z.string(),
    job_id: z.string().nullable(),
    created_at: Timestamp,
    expires_at: Timestamp.describe('the file is deleted then (FILE_RETENTION_SECONDS after it was finished) and its storage given back'),
  })
  .meta({ id: 'File' });

/**
 * Output files of batch predictions (`POST /v1/jobs {type: "inference", dataset, output}`):
 * read with `jobs:read`, deleted with `jobs:write`; another tenant's file is a 404.
 */
@Controller('v1/files')
export class FilesController {
  constructor(private readonly files: FilesService) {}

  @Get()
  @RequireScope('jobs:read')
  @Endpoint({ summary: 'List output files, newest first', tags, query: PageQuery, response: listOf(FileSchema), errors: [400] })
  list(@CurrentTenant() p: TenantPrincipal, @Query() query: z.infer<typeof PageQuery>) {
    return this.files.list(p.tenantId, query);
  }

  @Get(':id')
  @RequireScope('jobs:read')
  @Endpoint({ summary: 'Get an output file', tags, params: FileParams, response: FileSchema, errors: [400, 404] })
  async get(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof FileParams>) {
    return fileView(await this.files.get(p.tenantId, id));
  }

  @Get(':id/content')
  @RequireScope('jobs:read')
  @Endpoint({
    summary: "An output file's content, streamed",
    description:
      "NDJSON (one `{row, prediction, inputs?}` object a line) or CSV (RFC 4180, a header line; echoed input cells that a spreadsheet would run as a formula are prefixed with `'`), rows in dataset order. " +
      'Streamed from storage a chunk at a time. `Range: bytes=a-b` (one range) answers 206 with `Content-Range`; past the end 416. `ETag` is the sha256 of the content: `If-None-Match` with it answers 304.',
    tags,
    params: FileParams,
    requestHeaders: {
      Range: 'One byte range, `bytes=a-b`, `a-` or `-n`: answered 206 (several ranges: the whole file)',
      'If-Range': 'The ETag the range is of: another answers the whole file',
      'If-None-Match': 'The ETag of a copy held (or `*`): answered 304 while it is current',
    },
    response: z.string().meta({ format: 'binary' }),
    produces: ['application/x-ndjson', 'text/csv'],
    alsoAnswers: [206, 304],
    responseHeaders: {
      ETag: 'The sha256 of the content, quoted',
      'Content-Length': 'Bytes in this answer (of the range, for a 206)',
      'Content-Range': '`bytes a-b/<size>`: where the range is in the file',
      'Content-Disposition': '`attachment; filename="…"`, the file\'s `filename`',
      'Accept-Ranges': '`bytes`',
    },
    errors: [400, 404, 416],
  })
  async content(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof FileParams>,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const file = await this.files.get(p.tenantId, id);
    const size = Number(file.bytes);
    const etag = `"${file.sha256}"`;
    reply.header('ETag', etag).header('Accept-Ranges', 'bytes').header('Cache-Control', 'private, no-cache');
    const match = req.headers['if-none-match'];
    if (match?.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return reply.code(304).send();
    // A Range that names another version of the file (If-Range) gets the whole file.
    const ifRange = req.headers['if-range'];
    const range = byteRange(ifRange && ifRange !== etag ? undefined : req.headers.range, size);
    reply
      .header('Content-Type', file.contentType)
      .header('Content-Disposition', `attachment; filename="${fileName(file)}"`)
      .header('Content-Length', String(range.end - range.start));
    if (range.partial) reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end - 1}/${size}`);
    return reply.send(Readable.from(this.files.content(file, range), { objectMode: false }));
  }

  @Delete(':id')
  @RequireScope('jobs:write')
  @Endpoint({
    summary: 'Delete an output file (its storage is given back)',
    tags,
    params: FileParams,
    response: z.object({ id: z.string(), object: z.literal('file'), deleted: z.literal(true) }),
    errors: [400, 404],
  })
  delete(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof FileParams>) {
    return this.files.delete(p.tenantId, id);
  }
}
