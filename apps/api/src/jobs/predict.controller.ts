import { Body, Controller, Param, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { Answer, IdempotentPost } from '../http/idempotency.interceptor.js';
import { JobSchema, PredictBody, preferWait } from './jobs.dto.js';
import { JobsService } from './jobs.service.js';
import { PredictService } from './predict.service.js';

const ModelParams = z
  .object({
    id: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9._-]+$/, 'must be a model id or name'),
  })
  .strict();

const PredictionSchema = JobSchema.extend({
  predictions: z
    .array(z.record(z.string(), z.unknown()))
    .optional()
    .describe('inline under Prefer: wait once the job succeeded: every prediction, each with the `version` that answered'),
  explanations: z.array(z.unknown()).optional(),
}).meta({ id: 'Prediction' });

@Controller('v1/models')
export class PredictController {
  constructor(
    private readonly jobs: JobsService,
    private readonly sync: PredictService,
  ) {}

  @IdempotentPost(':id/predict', { answers: true })
  @RequireScope('jobs:write')
  @Endpoint({
    summary: 'Predict with a model (a version, an alias with its traffic split, or latest)',
    description:
      'Under `Prefer: wait[=N]` (N ≤ 60 s) the request takes the fast inference path: it is batched on a worker with concurrent requests for the same version, and the answer is 200 with the succeeded inference job, `predictions` (each naming the version that answered; an alias with a traffic split picks one per request) and `explanations` when asked. If it is not done within N seconds the answer is 202 with the queued job and its `Location`. Without `Prefer: wait` the answer is 202 with an ordinary inference job.',
    tags: ['Models'],
    params: ModelParams,
    body: PredictBody,
    response: PredictionSchema,
    status: 202,
    alsoAnswers: [200],
    errors: [400, 404, 500],
  })
  async predict(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof ModelParams>,
    @Body() body: z.infer<typeof PredictBody>,
    @Req() req: FastifyRequest,
    @Res() _reply: FastifyReply,
  ) {
    const wait = preferWait(req.headers.prefer);
    if (wait !== null) return this.sync.predict(p, id, body, wait);
    const { job, context } = await this.jobs.submit(p, { type: 'inference', model: id, ...body });
    return new Answer(202, await this.jobs.view(job, context), { Location: `/v1/jobs/${job.id}` });
  }
}
