import { Controller, Get, Header } from '@nestjs/common';
import { z } from 'zod';
import { OperationsService } from '../admin/operations.service.js';
import { Admin, Scrape } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { within } from './health.controller.js';
import { registry } from './metrics.js';

/** Prometheus figures: the operator's (routes, tenants' queues), so an admin key or a configured scraper. */
@Controller()
export class MetricsController {
  constructor(private readonly ops: OperationsService) {}

  @Get('metrics')
  @Admin()
  @Scrape()
  @Header('Content-Type', registry.contentType)
  @Endpoint({
    summary: 'Prometheus metrics (text format)',
    description: 'Needs the admin key, or the METRICS_TOKEN as bearer token, or a scraper address in METRICS_ALLOW_FROM.',
    tags: ['Operations'],
    response: z.string(),
  })
  async metrics() {
    // This process's figures, then the cluster's (jobs, queues, workers, what workers counted). If
    // PostgreSQL or Redis cannot answer, the process's figures still go out.
    const [own, cluster] = await Promise.all([
      registry.metrics(),
      within(this.ops.prometheus(), 2_000).catch((err: Error) => `# cluster-wide figures unavailable: ${err.message.replace(/\n/g, ' ')}\n`),
    ]);
    return `${own}\n${cluster}`;
  }
}
