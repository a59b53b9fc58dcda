import { isActive } from '@app/common';
import { JobRepository } from '@app/db';
import { Body, Controller, Get, Param, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { Answer, IdempotentPost } from '../http/idempotency.interceptor.js';
import { idParam, listOf } from '../http/schemas.js';
import { JobWatcher } from './job-watcher.js';
import {
  CreateJobBody,
  EventListQuery,
  JobEventSchema,
  JobListQuery,
  JobOutputSchema,
  JobSchema,
  OutputQuery,
  preferWait,
  type CreateJob,
} from './jobs.dto.js';
import { JobsService, type Submitted } from './jobs.service.js';
import { streamJobEvents } from './job-stream.js';

const JobParams = z.object({ id: idParam('job') }).strict();
const tags = ['Jobs'];

@Controller('v1/jobs')
export class JobsController {
  constructor(
    private readonly jobs: JobsService,
    private readonly repo: JobRepository,
    private readonly watcher: JobWatcher,
  ) {}

  @IdempotentPost('', { answers: true })
  @RequireScope('jobs:write')
  @Endpoint({
    summary: 'Submit a training, evaluation or inference job',
    description:
      'Accepted means durable: the job and its first event are committed before the answer. Without `Prefer: wait` the answer is 202 with the queued job and a `Location`; with `Prefer: wait[=N]` (N ≤ 60 s) it is 200 with the finished job if it ends in time, else 202. ' +
      'A training is checked against the quotas before it is queued: its model (custom topology or preset) against `max_model_parameters`, and its least possible run time against `max_job_seconds` ' +
      '(403 `quota_exceeded_error` naming the quota). A running job that passes `max_job_seconds` is stopped and fails with `error.code: "max_job_seconds"`.',
    tags,
    body: CreateJobBody,
    response: JobSchema,
    status: 202,
    errors: [400, 403, 404, 413, 429],
  })
  async create(@CurrentTenant() p: TenantPrincipal, @Body() body: CreateJob, @Req() req: FastifyRequest, @Res() _reply: FastifyReply) {
    return this.answer(await this.jobs.submit(p, body), preferWait(req.headers.prefer));
  }

  @Get()
  @RequireScope('jobs:read')
  @Endpoint({
    summary: 'List jobs, newest first (filters: type, status, model)',
    tags,
    query: JobListQuery,
    response: listOf(JobSchema),
    errors: [400],
  })
  list(@CurrentTenant() p: TenantPrincipal, @Query() query: z.infer<typeof JobListQuery>) {
    return this.jobs.list(p.tenantId, query);
  }

  @Get(':id')
  @RequireScope('jobs:read')
  @Endpoint({
    summary: 'Get a job: status, progress, queue position, result or error',
    tags,
    params: JobParams,
    response: JobSchema,
    errors: [400, 404],
  })
  async get(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof JobParams>) {
    return this.jobs.view(await this.jobs.get(p.tenantId, id));
  }

  @Get(':id/events')
  @RequireScope('jobs:read')
  @Endpoint({
    summary: "A job's history, oldest first",
    tags,
    params: JobParams,
    query: EventListQuery,
    response: listOf(JobEventSchema),
    errors: [400, 404],
  })
  events(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof JobParams>, @Query() query: z.infer<typeof EventListQuery>) {
    return this.jobs.events(p.tenantId, id, query);
  }

  @Get(':id/stream')
  @RequireScope('jobs:read')
  @Endpoint({
    summary: "A job's events as Server-Sent Events: its history, then live until it ends",
    description:
      'Each event has `id` (its number within the job: 1, 2, 3 … with no gaps; send it back as `Last-Event-ID` to resume), `event` (its type) and `data` (the event as JSON). The stream closes after the terminal event.',
    tags,
    params: JobParams,
    requestHeaders: { 'Last-Event-ID': 'The `id` of the last event received: the stream resumes after it' },
    response: z.string(),
    produces: ['text/event-stream'],
    errors: [400, 404],
  })
  async stream(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof JobParams>,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const job = await this.jobs.get(p.tenantId, id);
    await streamJobEvents({ job, req, reply, repo: this.repo, watcher: this.watcher });
  }

  @Get(':id/output')
  @RequireScope('jobs:read')
  @Endpoint({
    summary: "An inference job's predictions, a page at a time (page 0 is what `result` holds)",
    tags,
    params: JobParams,
    query: OutputQuery,
    response: JobOutputSchema,
    errors: [400, 404],
  })
  async output(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof JobParams>,
    @Query() { page }: z.infer<typeof OutputQuery>,
  ) {
    return this.jobs.output(p.tenantId, id, page);
  }

  @IdempotentPost(':id/cancel')
  @RequireScope('jobs:write')
  @Endpoint({
    summary: 'Cancel a job: a queued job never starts; a running one stops within two seconds',
    tags,
    params: JobParams,
    response: JobSchema,
    status: 200,
    errors: [400, 404, 409],
  })
  async cancel(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof JobParams>) {
    return this.jobs.view(await this.jobs.cancel(p.tenantId, id));
  }

  /** 200 with the finished job when it ended in time, else 202 with it as it stands and its Location. */
  async answer({ job, context }: Submitted, wait: number | null): Promise<Answer> {
    if (wait === null) return new Answer(202, await this.jobs.view(job, context), { Location: `/v1/jobs/${job.id}` });
    const current = await this.jobs.waitFor(job, wait);
    const done = !isActive(current.status);
    return new Answer(done ? 200 : 202, await this.jobs.view(current), { Location: `/v1/jobs/${job.id}` });
  }
}
