import { Controller, Get, Param, Query } from '@nestjs/common';
import { z } from 'zod';
import { Admin, type AdminPrincipal, CurrentAdmin } from '../auth/principal.js';
import { actorOf } from '../http/actor.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost } from '../http/idempotency.interceptor.js';
import { idParam, listOf } from '../http/schemas.js';
import { EventListQuery, JobEventSchema } from '../jobs/jobs.dto.js';
import { AdminJobListQuery, AdminJobSchema, OverviewSchema, WebhookFailureQuery, WebhookFailureSchema } from './operations.dto.js';
import { OperationsService } from './operations.service.js';

const JobParams = z.object({ id: idParam('job') }).strict();
const tags = ['Admin: operations'];

@Admin()
@Controller('v1/admin')
export class OperationsController {
  constructor(private readonly ops: OperationsService) {}

  @Get('overview')
  @Endpoint({
    summary: 'The service at a glance: queues, jobs by status, throughput and failures, latencies, workers, webhooks',
    tags,
    response: OverviewSchema,
  })
  overview() {
    return this.ops.overview();
  }

  @Get('webhook-failures')
  @Endpoint({
    summary: 'Webhook messages that failed, or are failing, across tenants; newest first',
    tags,
    query: WebhookFailureQuery,
    response: listOf(WebhookFailureSchema),
    errors: [400],
  })
  webhookFailures(@Query() query: z.infer<typeof WebhookFailureQuery>) {
    return this.ops.webhookFailures(query);
  }

  @Get('jobs')
  @Endpoint({
    summary: "Every tenant's jobs, newest first (filters: tenant, type, status)",
    tags,
    query: AdminJobListQuery,
    response: listOf(AdminJobSchema),
    errors: [400],
  })
  jobs(@Query() query: z.infer<typeof AdminJobListQuery>) {
    return this.ops.listJobs(query);
  }

  @Get('jobs/:id')
  @Endpoint({ summary: 'Any job', tags, params: JobParams, response: AdminJobSchema, errors: [400, 404] })
  job(@Param() { id }: z.infer<typeof JobParams>) {
    return this.ops.job(id);
  }

  @Get('jobs/:id/events')
  @Endpoint({
    summary: "Any job's history, oldest first",
    tags,
    params: JobParams,
    query: EventListQuery,
    response: listOf(JobEventSchema),
    errors: [400, 404],
  })
  events(@Param() { id }: z.infer<typeof JobParams>, @Query() query: z.infer<typeof EventListQuery>) {
    return this.ops.events(id, query);
  }

  @IdempotentPost('jobs/:id/cancel')
  @Endpoint({
    summary: 'Cancel any queued or running job',
    tags,
    params: JobParams,
    response: AdminJobSchema,
    status: 200,
    errors: [400, 404, 409],
  })
  cancel(@CurrentAdmin() admin: AdminPrincipal, @Param() { id }: z.infer<typeof JobParams>) {
    return this.ops.cancel(actorOf(admin), id);
  }

  @IdempotentPost('jobs/:id/retry')
  @Endpoint({
    summary: 'Run a failed job again, as a new attempt',
    tags,
    params: JobParams,
    response: AdminJobSchema,
    status: 200,
    errors: [400, 404, 409],
  })
  retry(@CurrentAdmin() admin: AdminPrincipal, @Param() { id }: z.infer<typeof JobParams>) {
    return this.ops.retry(actorOf(admin), id);
  }
}
