import { ApiError } from '@app/common';
import {
  FOUNDATION_MODELS,
  foundationModel,
  type FoundationModelSpec,
  foundationWeights,
  type ImageInputLimits,
  type TextInputLimits,
} from '@app/ml';
import { decodeVector, type FoundationReply } from '@app/queue';
import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import type { TenantPrincipal } from '../auth/principal.js';
import type { EmbeddingsBody, FoundationPredictBody } from './foundation.dto.js';
import { FoundationTransport } from './foundation-transport.js';
import { checkImageInput } from './image-input.js';

/**
 * Foundation models: the catalog's cards, embeddings (text and images) and classification by a
 * platform model. Inputs are checked here, so that a bad one is a 400 naming its index before any
 * worker is asked; what only decoding shows (a corrupt image) comes back from the worker as the
 * same 400.
 */
@Injectable()
export class FoundationService {
  constructor(private readonly transport: FoundationTransport) {}

  async list() {
    return { object: 'list' as const, data: await Promise.all(FOUNDATION_MODELS.map((m) => card(m))), has_more: false };
  }

  async get(id: string) {
    return card(this.find(id));
  }

  async embed(p: TenantPrincipal, body: z.infer<typeof EmbeddingsBody>) {
    const spec = this.find(body.model, 'model');
    if (spec.kind === 'image-classification') {
      throw ApiError.invalid(
        'model_kind_invalid',
        `${spec.id} is an image-classification model; embeddings come from text-embedding or image-embedding models`,
        'model',
      );
    }
    if (body.dimensions !== undefined && body.dimensions !== spec.dimensions) {
      throw ApiError.invalid(
        'dimensions_invalid',
        `${spec.id} gives ${spec.dimensions} dimensions; it cannot be asked for ${body.dimensions}`,
        'dimensions',
      );
    }
    const inputs = spec.input.type === 'text' ? texts(body.input, spec.input) : images(body.input, spec.input);
    const reply = answered(await this.transport.call(p.tenantId, spec.id, 'embed', inputs));
    const vectors = reply.vectors ?? [];
    if (vectors.length !== inputs.length) throw new Error(`the worker returned ${vectors.length} embeddings for ${inputs.length} inputs`);
    const tokens = (reply.tokens ?? []).reduce((a, b) => a + b, 0);
    const truncated = reply.truncated ?? [];
    return {
      object: 'list' as const,
      model: spec.id,
      data: vectors.map((v, index) => ({
        object: 'embedding' as const,
        index,
        embedding: body.encoding_format === 'base64' ? v : Array.from(decodeVector(v)),
        ...(truncated[index] ? { truncated: true } : {}),
      })),
      usage: { prompt_tokens: tokens, total_tokens: tokens, truncated_inputs: truncated.filter(Boolean).length },
    };
  }

  async predict(p: TenantPrincipal, id: string, body: z.infer<typeof FoundationPredictBody>) {
    const spec = this.find(id);
    if (spec.kind !== 'image-classification' || !spec.labels) {
      throw ApiError.invalid(
        'model_kind_invalid',
        `${spec.id} is a ${spec.kind} model; predictions come from image-classification models (use POST /v1/embeddings)`,
        'id',
      );
    }
    if (body.explain) throw ApiError.invalid('explain_unavailable', 'Explanations are not available for platform models', 'explain');
    const inputs = images(body.inputs, spec.input as ImageInputLimits, 'inputs');
    const reply = answered(await this.transport.call(p.tenantId, spec.id, 'classify', inputs), 'inputs');
    const labels = spec.labels;
    return {
      object: 'list' as const,
      model: spec.id,
      predictions: (reply.probabilities ?? []).map((row) => {
        let best = 0;
        row.forEach((v, i) => {
          best = v > row[best] ? i : best;
        });
        return { label: labels[best], probabilities: Object.fromEntries(labels.map((l, i) => [l, row[i]])) };
      }),
    };
  }

  private find(id: string, param = 'id'): FoundationModelSpec {
    const spec = foundationModel(id);
    if (!spec)
      throw new ApiError(
        404,
        'invalid_request_error',
        'model_not_found',
        `No foundation model '${id}' (GET /v1/foundation-models lists them)`,
        param,
      );
    return spec;
  }
}

async function card(m: FoundationModelSpec) {
  const { bytes, sha256 } = await foundationWeights(m);
  return {
    object: 'foundation_model' as const,
    id: m.id,
    kind: m.kind,
    description: m.description,
    input: { ...m.input },
    ...(m.dimensions !== undefined ? { dimensions: m.dimensions } : {}),
    ...(m.labels ? { labels: [...m.labels] } : {}),
    parameters: m.parameters,
    bytes,
    sha256,
    license: m.license,
    source: { ...m.source, files: [...m.files] },
    ...(m.notes ? { notes: m.notes } : {}),
  };
}

function answered(reply: FoundationReply, param = 'input'): Extract<FoundationReply, { ok: true }> {
  if (reply.ok) return reply;
  if (reply.error.code === 'input_invalid') {
    const where = reply.error.index !== undefined ? `${param}[${reply.error.index}]` : param;
    // libs/ml names the input as `input[i]`; say it as this route's parameter.
    const message = reply.error.message.replace(/^input\[\d+\]:?\s*/, '');
    throw ApiError.invalid('input_invalid', `${where}: ${message}`, where);
  }
  throw new ApiError(500, 'api_error', reply.error.code, reply.error.message);
}

function texts(input: unknown, limits: TextInputLimits): string[] {
  if (Array.isArray(input) && input.some((x) => typeof x !== 'string'))
    throw ApiError.invalid('input_kind_invalid', 'This model takes text: a string or an array of strings', 'input');
  const list = typeof input === 'string' ? [input] : (input as string[]);
  if (list.length > limits.max_inputs)
    throw ApiError.invalid('too_many_inputs', `At most ${limits.max_inputs} inputs per request (got ${list.length})`, 'input');
  list.forEach((text, i) => {
    const where = typeof input === 'string' ? 'input' : `input[${i}]`;
    if (text.trim() === '')
      throw ApiError.invalid('input_empty', `${where} is empty or only whitespace; every input must have text`, where);
    if (text.length > limits.max_chars)
      throw ApiError.invalid('input_too_long', `${where} has ${text.length} characters, more than the limit of ${limits.max_chars}`, where);
  });
  return list;
}

/** base64 of each image, checked for size, format and declared pixels from its header (nothing decoded here). */
function images(input: unknown, limits: ImageInputLimits, param = 'input'): string[] {
  if (!Array.isArray(input) || input.some((x) => typeof x !== 'object' || x === null)) {
    throw ApiError.invalid(
      'input_kind_invalid',
      'This model takes images: an array of {image: "<base64 PNG or JPEG, or a data: URL>"}',
      param,
    );
  }
  const list = input as Array<{ image: string }>;
  if (list.length > limits.max_inputs)
    throw ApiError.invalid('too_many_inputs', `At most ${limits.max_inputs} images per request (got ${list.length})`, param);
  return list.map(({ image }, i) => checkImageInput(image, `${param}[${i}]`, limits));
}
