import { ApiError } from '@app/common';

export interface PageQuery {
  limit: number;
  starting_after?: string;
}

export interface Page<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
}

interface Cursorable {
  id: string;
  createdAt: Date;
}

/**
 * Prisma arguments for a newest-first page after `cursor` (a row of the same, already scoped,
 * listing). Ordering by (created_at, id) keeps pages stable when rows share a timestamp.
 */
export function pageArgs(query: PageQuery, cursor: Cursorable | null) {
  if (query.starting_after !== undefined && cursor === null) {
    throw ApiError.invalid('invalid_cursor', `starting_after '${query.starting_after}' is not an object of this list`, 'starting_after');
  }
  const where = cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {};
  return {
    where,
    orderBy: [{ createdAt: 'desc' as const }, { id: 'desc' as const }],
    take: query.limit + 1,
  };
}

export function toPage<R, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  return { object: 'list', data: rows.slice(0, limit).map(map), has_more: rows.length > limit };
}
