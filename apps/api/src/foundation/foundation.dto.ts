import { z } from 'zod';

export const FoundationModelSchema = z
  .object({
    object: z.literal('foundation_model'),
    id: z.string(),
    kind: z.enum(['text-embedding', 'image-embedding', 'image-classification']),
    description: z.string(),
    input: z
      .record(z.string(), z.unknown())
      .describe(
        '`type` (text or image) and its limits: max_tokens, max_chars, max_inputs; or width, height, max_bytes, max_pixels, max_inputs',
      ),
    dimensions: z.number().int().optional(),
    labels: z.array(z.string()).optional(),
    parameters: z.number().int(),
    bytes: z.number().int().describe('bytes of the weights as shipped'),
    sha256: z.string().describe('sha256 of the weights as shipped (every file of `files` in order)'),
    license: z.string(),
    source: z.object({ package: z.string(), version: z.string(), files: z.array(z.string()) }),
    notes: z.string().optional(),
  })
  .meta({ id: 'FoundationModel' });

export const FoundationParams = z
  .object({
    id: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[a-z0-9.-]+$/, 'must be a foundation model id'),
  })
  .strict();

const ImageInput = z.object({ image: z.string().min(1).describe('base64 of a PNG or JPEG, or a data: URL') }).strict();

export const EmbeddingsBody = z
  .object({
    model: z.string().min(1).max(100),
    input: z
      .union([z.string(), z.array(z.string()).min(1), z.array(ImageInput).min(1)])
      .describe('a string or an array of strings (text models), or an array of {image} (image models)'),
    encoding_format: z.enum(['float', 'base64']).optional().describe('base64: each embedding as base64 of little-endian float32'),
    dimensions: z.number().int().min(1).optional().describe("if given, must equal the model's dimensions (no truncation)"),
    user: z.string().max(256).optional().describe('accepted for OpenAI compatibility; not stored'),
  })
  .strict();

export const EmbeddingsAnswer = z
  .object({
    object: z.literal('list'),
    model: z.string(),
    data: z.array(
      z.object({
        object: z.literal('embedding'),
        index: z.number().int(),
        embedding: z.union([z.array(z.number()), z.string()]),
        truncated: z.boolean().optional().describe('present and true when the text was cut at the model’s max_tokens'),
      }),
    ),
    usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int(), truncated_inputs: z.number().int() }),
  })
  .meta({ id: 'EmbeddingList' });

export const FoundationPredictBody = z
  .object({
    inputs: z.array(ImageInput).min(1),
    explain: z.boolean().optional().describe('not available for platform models: refused with 400'),
  })
  .strict();

export const FoundationPredictAnswer = z
  .object({
    object: z.literal('list'),
    model: z.string(),
    predictions: z.array(z.object({ label: z.string(), probabilities: z.record(z.string(), z.number()) })),
  })
  .meta({ id: 'FoundationPredictions' });
