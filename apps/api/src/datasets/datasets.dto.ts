import { type Dataset, fromDbTask } from '@app/db';
import { z } from 'zod';
import { iso, Timestamp, listQuery } from '../http/schemas.js';
import type { ColumnSummary } from './dataset-validator.js';

export const TASKS = ['classification', 'regression', 'text-classification', 'image-classification'] as const;

const meta = {
  name: z.string().trim().min(1).max(200),
  task: z.enum(TASKS),
  label: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('the label column (default "label"; a zip upload takes its labels from the class folders)'),
  text_field: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe(
      'the column holding the text: text-classification (default "text"), or regression on text (a numeric label beside a text column; models on it train on a foundation model)',
    ),
};

export const CreateDatasetBody = z
  .object({
    ...meta,
    records: z
      .array(z.unknown())
      .describe('the rows, as objects with the same keys; for image-classification {image: "<base64 PNG or JPEG>", label, ...}'),
  })
  .strict();

/** For CSV and NDJSON uploads, the metadata travels in the query string. */
export const UploadQuery = z.object(meta).strict();

export const DatasetListQuery = listQuery({ task: z.enum(TASKS).optional() });

export const DatasetSchema = z
  .object({
    id: z.string(),
    object: z.literal('dataset'),
    name: z.string(),
    task: z.enum(TASKS),
    label: z.string(),
    text_field: z.string().nullable(),
    format: z.enum(['json', 'csv', 'ndjson', 'zip']),
    rows: z.number(),
    columns: z.array(
      z.object({
        name: z.string(),
        type: z.enum(['number', 'string', 'text', 'category', 'image']),
        role: z.enum(['feature', 'label', 'text', 'image', 'ignored']),
        class_counts: z.record(z.string(), z.number()).optional(),
        images: z
          .object({ count: z.number(), min_width: z.number(), max_width: z.number(), min_height: z.number(), max_height: z.number() })
          .optional()
          .describe(
            'the image column of an image-classification dataset: how many images, and their smallest and largest width and height in pixels',
          ),
      }),
    ),
    bytes: z.number(),
    sha256: z.string(),
    created_at: Timestamp,
  })
  .meta({ id: 'Dataset' });

export function datasetView(d: Dataset) {
  return {
    id: d.id,
    object: 'dataset' as const,
    name: d.name,
    task: fromDbTask(d.task),
    label: d.label,
    text_field: d.textField,
    format: d.format as 'json' | 'csv' | 'ndjson' | 'zip',
    rows: d.rows,
    columns: d.columns as unknown as ColumnSummary[],
    bytes: Number(d.bytes),
    sha256: d.sha256,
    created_at: iso(d.createdAt)!,
  };
}
