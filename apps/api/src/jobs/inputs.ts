import { ApiError } from '@app/common';
import { checkImageInput } from '../foundation/image-input.js';

/** What a version's `input_schema` says about the columns a prediction reads. */
export interface InputSchema {
  features?: Array<{ name: string }>;
  text_field?: string;
  image_field?: string;
}

/**
 * The inputs carry the columns the version reads: its image as base64 of a PNG or JPEG within the
 * pixel limit, its text column as a non-empty string, each of
 * its features as a number (or a numeric string). The first problem is a 400 naming the row and
 * the field, so that bad input never reaches a worker.
 */
export function checkInputs(inputSchema: unknown, inputs: Array<Record<string, unknown>>): void {
  const schema = (inputSchema ?? {}) as InputSchema;
  inputs.forEach((row, i) => {
    // the bare base64 goes on (a data: URL prefix and whitespace removed)
    if (schema.image_field) row[schema.image_field] = checkImageInput(row[schema.image_field], `inputs[${i}].${schema.image_field}`);
    if (schema.text_field) {
      const text = row[schema.text_field];
      if (typeof text !== 'string' || text.trim() === '')
        throw ApiError.invalid(
          'input_invalid',
          `inputs[${i}] needs the text column '${schema.text_field}' as a string`,
          `inputs[${i}].${schema.text_field}`,
        );
    }
    for (const f of schema.features ?? []) {
      const value = row[f.name];
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
        if (!Number.isFinite(n))
          throw ApiError.invalid('input_invalid', `inputs[${i}] needs the feature '${f.name}' as a number`, `inputs[${i}].${f.name}`);
      }
    }
  });
}
