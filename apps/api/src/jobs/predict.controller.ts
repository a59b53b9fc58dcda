import { Body, Controller, Param, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { Answer, IdempotentPost } from '../http/idempotency.interceptor.js';
import { JobSchema, PredictBody, preferWait } from './jobs.dto.js';
import { JobsService } from './jobs.service.js';

const ModelParams = z.object({ id: z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/, 'must be a model id or name') }).strict();

const PredictionSchema = JobSchema.extend({
  predictions: z.array(z.record(z.string(), z.unknown())).optional().describe('inline under Prefer: wait once the job succeeded'),
  explanations: z.array(z.unknown()).optional(),
}).meta({ id: 'Prediction' });

@Controller('v1/models')
export class PredictController {
  constructor(private readonly jobs: JobsService) {}

  @IdempotentPost(':id/predict', { answers: true })
  @RequireScope('jobs:write')
  @Endpoint({
    summary: 'Predict with a model (a version, an alias with its traffic split, or latest)',
    description: 'Under `Prefer: wait[=N]` the answer is 200 with `predictions` (and `explanations` when asked) once they are ready, else 202 with the inference job and its `Location`.',
    tags: ['Models'],
    params: ModelParams,
    body: PredictBody,
    response: PredictionSchema,
    status: 202,
    errors: [400, 404],
  })
  async predict(@CurrentTenant() p: TenantPrincipal, @Param() { id }: z.infer<typeof ModelParams>, @Body() body: z.infer<typeof PredictBody>, @Req() req: FastifyRequest, @Res() _reply: FastifyReply) {
    const job = await this.jobs.submit(p, { type: 'inference', model: id, ...body });
    const wait = preferWait(req.headers.prefer);
    const current = wait === null ? job : await this.jobs.waitFor(job, wait);
    const view = await this.jobs.view(current);
    if (current.status !== 'succeeded' || wait === null) {
      return new Answer(['queued', 'running'].includes(current.status) ? 202 : 200, view, { Location: `/v1/jobs/${job.id}` });
    }
    const result = (current.result ?? {}) as { predictions?: unknown[]; explanations?: unknown[] };
    return new Answer(200, { ...view, predictions: result.predictions ?? [], ...(result.explanations ? { explanations: result.explanations } : {}) }, { Location: `/v1/jobs/${job.id}` });
  }
}
