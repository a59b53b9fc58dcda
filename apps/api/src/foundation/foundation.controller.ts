import { Body, Controller, Get, Param } from '@nestjs/common';
import type { z } from 'zod';
import { CurrentTenant, RequireScope, type TenantPrincipal } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { IdempotentPost } from '../http/idempotency.interceptor.js';
import { listOf } from '../http/schemas.js';
import {
  EmbeddingsAnswer,
  EmbeddingsBody,
  FoundationModelSchema,
  FoundationParams,
  FoundationPredictAnswer,
  FoundationPredictBody,
} from './foundation.dto.js';
import { FoundationService } from './foundation.service.js';

const tags = ['Foundation models'];

@Controller('v1/foundation-models')
export class FoundationModelsController {
  constructor(private readonly foundation: FoundationService) {}

  @Get()
  @RequireScope('models:read')
  @Endpoint({ summary: 'List the platform’s pretrained models', tags, response: listOf(FoundationModelSchema), errors: [] })
  list() {
    return this.foundation.list();
  }

  @Get(':id')
  @RequireScope('models:read')
  @Endpoint({
    summary: 'A pretrained model’s card: source package and version, licence, parameters, bytes and sha256 of the weights, input limits',
    tags,
    params: FoundationParams,
    response: FoundationModelSchema,
    errors: [400, 404],
  })
  get(@Param() { id }: z.infer<typeof FoundationParams>) {
    return this.foundation.get(id);
  }

  @IdempotentPost(':id/predict')
  @RequireScope('models:read')
  @Endpoint({
    summary: 'Classify images with a platform model (image-classification kinds)',
    description:
      'Answers inline. Requests of every tenant for the same model share one batch on a worker. An undecodable image is a 400 naming its index; no worker online is a 503 with Retry-After.',
    tags,
    params: FoundationParams,
    body: FoundationPredictBody,
    response: FoundationPredictAnswer,
    status: 200,
    errors: [400, 404, 413, 503],
  })
  predict(
    @CurrentTenant() p: TenantPrincipal,
    @Param() { id }: z.infer<typeof FoundationParams>,
    @Body() body: z.infer<typeof FoundationPredictBody>,
  ) {
    return this.foundation.predict(p, id, body);
  }
}

@Controller('v1/embeddings')
export class EmbeddingsController {
  constructor(private readonly foundation: FoundationService) {}

  @IdempotentPost()
  @RequireScope('models:read')
  @Endpoint({
    summary: 'Embeddings of texts or images (the OpenAI embeddings shape)',
    description:
      'One embedding per input, in input order. Text longer than the model’s max_tokens is truncated (then `truncated: true` on its embedding and counted in `usage.truncated_inputs`); longer than max_chars, empty or whitespace-only is a 400 naming its index. Requests of every tenant for the same model share one encoder batch on a worker. `encoding_format: "base64"` gives each embedding as base64 of little-endian float32. No worker online is a 503 with Retry-After.',
    tags,
    body: EmbeddingsBody,
    response: EmbeddingsAnswer,
    status: 200,
    errors: [400, 404, 413, 503],
  })
  create(@CurrentTenant() p: TenantPrincipal, @Body() body: z.infer<typeof EmbeddingsBody>) {
    return this.foundation.embed(p, body);
  }
}
