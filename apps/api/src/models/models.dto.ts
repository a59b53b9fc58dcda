import { fromDbTask, type Model, type ModelAlias, versionView } from '@app/db';
import { z } from 'zod';
import { TASKS } from '../datasets/datasets.dto.js';
import { iso, Timestamp, listQuery, VersionNumber } from '../http/schemas.js';

export const ModelName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dots, dashes and underscores, starting with a letter or digit')
  .refine((n) => !n.startsWith('mdl_'), 'must not start with mdl_ (ids do)');

export const CreateModelBody = z.object({ name: ModelName, task: z.enum(TASKS), description: z.string().max(2000).optional() }).strict();

export const ModelListQuery = listQuery({ task: z.enum(TASKS).optional() });

const AliasTargets = z.array(z.object({ version: z.number().int().min(1), weight: z.number().int().min(1).max(100) }));

export const ModelSchema = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    name: z.string(),
    task: z.enum(TASKS),
    description: z.string().nullable(),
    latest_version: z.number().nullable(),
    aliases: z.record(z.string(), AliasTargets).describe('alias name → versions and weights; `latest` always points to the newest version'),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .meta({ id: 'Model' });

export const VersionSchema = z
  .object({
    id: z.string(),
    object: z.literal('model_version'),
    model_id: z.string(),
    version: z.number(),
    metrics: z.record(z.string(), z.unknown()),
    architecture: z.record(z.string(), z.unknown()),
    hyperparameters: z.record(z.string(), z.unknown()),
    input_schema: z.record(z.string(), z.unknown()),
    labels: z.array(z.string()).nullable(),
    parameters: z.number(),
    bytes: z.number(),
    sha256: z.string(),
    backend: z.string(),
    source: z.enum(['training', 'import']),
    training_job_id: z.string().nullable(),
    dataset_id: z.string().nullable(),
    base_version: z.number().nullable(),
    base_model: z
      .object({ id: z.string(), sha256: z.string() })
      .nullable()
      .describe('transfer-learned versions: the frozen foundation model they run on (never stored with the version)'),
    created_at: Timestamp,
  })
  .meta({ id: 'ModelVersion' });

export const AliasName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z][a-z0-9_-]*$/, 'lower-case letters, digits, dashes and underscores, starting with a letter');

export const SetAliasBody = z
  .object({
    version: VersionNumber.optional(),
    versions: z
      .array(z.object({ version: VersionNumber, weight: z.number().int().min(1).max(100) }).strict())
      .min(1)
      .max(10)
      .optional(),
  })
  .strict()
  .refine((b) => (b.version === undefined) !== (b.versions === undefined), {
    message: 'give exactly one of version or versions',
    path: ['version'],
  });

export const AliasSchema = z
  .object({ object: z.literal('model_alias'), model_id: z.string(), name: z.string(), versions: AliasTargets, updated_at: Timestamp })
  .meta({ id: 'ModelAlias' });

export const ImportVersionBody = z
  .object({
    model: z
      .record(z.string(), z.unknown())
      .describe('a TF.js layers model.json with its weights inlined as base64 in weightData (the form the artifact download gives)'),
    input_schema: z
      .object({
        label: z.string().optional(),
        features: z.array(z.union([z.string(), z.object({ name: z.string() })])).optional(),
        text_field: z.string().optional(),
        vocabulary: z.array(z.string()).optional(),
      })
      .optional()
      .describe('required unless the model.json came from this service (userDefinedMetadata.aiaas)'),
    labels: z.array(z.string()).optional(),
    standardization: z.object({ mean: z.array(z.number()), std: z.array(z.number()) }).optional(),
  })
  .strict();

export function aliasMap(latest: number | null, aliases: ModelAlias[]): Record<string, Array<{ version: number; weight: number }>> {
  const out: Record<string, Array<{ version: number; weight: number }>> = {};
  if (latest !== null) out.latest = [{ version: latest, weight: 100 }];
  for (const a of aliases) out[a.name] = a.versions as Array<{ version: number; weight: number }>;
  return out;
}

export function modelView(m: Model, extras: { latest: number | null; aliases: ModelAlias[] }) {
  return {
    id: m.id,
    object: 'model' as const,
    name: m.name,
    task: fromDbTask(m.task),
    description: m.description,
    latest_version: extras.latest,
    aliases: aliasMap(extras.latest, extras.aliases),
    created_at: iso(m.createdAt)!,
    updated_at: iso(m.updatedAt)!,
  };
}

export { versionView };

export function aliasView(a: ModelAlias) {
  return {
    object: 'model_alias' as const,
    model_id: a.modelId,
    name: a.name,
    versions: a.versions as Array<{ version: number; weight: number }>,
    updated_at: iso(a.updatedAt)!,
  };
}
