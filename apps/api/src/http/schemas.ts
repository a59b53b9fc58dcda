import { z } from 'zod';

const page = {
  limit: z.coerce.number().int().min(1).max(100).default(20),
  starting_after: z.string().min(1).max(100).optional(),
};

/** `?limit=&starting_after=` as API.md defines them. */
export const PageQuery = z.object(page).strict();

/** A list's query: the page parameters and the list's own filters, nothing else. */
export const listQuery = <T extends z.ZodRawShape>(filters: T) => z.object({ ...page, ...filters }).strict();

export const idParam = (prefix: string) =>
  z
    .string()
    .max(100)
    .regex(new RegExp(`^${prefix}_[0-9A-Za-z]+$`), `must be an id starting with ${prefix}_`);

/**
 * A model version number in a body. Bounded like the `{n}` of the version routes: the column is a
 * PostgreSQL integer, and a number past 2^31 used to reach it and fail as a 500 (found by the
 * fault suite's fuzz pass).
 */
export const VersionNumber = z.number().int().min(1).max(1_000_000);

export const Timestamp = z.string().meta({ format: 'date-time', example: '2026-11-28T12:00:00.000Z' });

export const listOf = <T extends z.ZodType>(item: T) => z.object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean() });

export const ErrorSchema = z
  .object({
    error: z.object({
      type: z.enum([
        'invalid_request_error',
        'authentication_error',
        'permission_error',
        'rate_limit_error',
        'quota_exceeded_error',
        'idempotency_error',
        'api_error',
      ]),
      code: z.string(),
      message: z.string(),
      param: z.string().optional(),
    }),
  })
  .meta({ id: 'Error' });

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
