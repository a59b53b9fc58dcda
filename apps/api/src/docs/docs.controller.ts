import { Controller, Get, Header, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Public } from '../auth/principal.js';
import { OpenApiBuilder } from './openapi.js';

const swaggerUiDir = createRequire(import.meta.url)('swagger-ui-dist').getAbsoluteFSPath() as string;
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
};

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aiaas API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui', persistAuthorization: false });</script>
</body></html>`;

/** The OpenAPI document and an interactive page of it, served from npm packages (no CDN). */
@Public()
@Controller()
export class DocsController {
  constructor(private readonly openapi: OpenApiBuilder) {}

  @Get('openapi.json')
  openapiJson() {
    return this.openapi.document();
  }

  @Get('docs')
  @Header('Content-Type', 'text/html; charset=utf-8')
  page() {
    return PAGE;
  }

  @Get('docs/assets/:file')
  asset(@Param('file') file: string, @Res() reply: FastifyReply) {
    const type = ASSETS[file];
    if (!type)
      return reply.status(404).send({ error: { type: 'invalid_request_error', code: 'route_not_found', message: 'No such asset' } });
    return reply
      .type(type)
      .header('Cache-Control', 'public, max-age=86400')
      .send(createReadStream(join(swaggerUiDir, file)));
  }
}
