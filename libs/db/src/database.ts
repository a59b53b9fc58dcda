import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from './generated/client.js';

// BIGINT columns (byte and second counters) come back as numbers; they stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * One pg pool shared by Prisma (through its driver adapter) and the few hot-path queries that
 * go straight to `pg` (Prisma costs about ten times more per primary-key read here).
 */
export class Database {
  readonly pool: pg.Pool;
  readonly prisma: PrismaClient;

  /**
   * `idleInTransactionMs` is a backstop: PostgreSQL ends a session left idle inside a transaction
   * that long (a bug that forgot a ROLLBACK must not hold a pooled connection and its locks forever).
   */
  constructor(url: string, poolSize = 10, idleInTransactionMs = 60_000) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: 5_000,
      ...(idleInTransactionMs > 0 ? { options: `-c idle_in_transaction_session_timeout=${idleInTransactionMs}` } : {}),
    });
    // An idle client's error (PostgreSQL restarting) must not crash the process; the pool replaces it.
    this.pool.on('error', () => undefined);
    this.prisma = new PrismaClient({ adapter: new PrismaPg(this.pool) });
  }

  async ping(timeoutMs = 2_000): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query({ text: 'SELECT 1', query_timeout: timeoutMs } as pg.QueryConfig);
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.prisma.$disconnect();
    await this.pool.end();
  }
}

/**
 * A row read with plain `pg` in the shape Prisma returns (camelCase keys), for the few hot reads
 * that skip Prisma. Enum values come back as the database spells them (see fromDbTask).
 */
export function camelRow<T>(row: Record<string, unknown> | undefined): T | null {
  if (!row) return null;
  const out: Record<string, unknown> = {};
  for (const k in row) out[camelKey(k)] = row[k];
  return out as T;
}

/** snake_case → camelCase, remembered: the same few dozen column names come back on every row. */
const camelKeys = new Map<string, string>();
function camelKey(k: string): string {
  let c = camelKeys.get(k);
  if (c === undefined) {
    c = k.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
    if (camelKeys.size < 10_000) camelKeys.set(k, c);
  }
  return c;
}

/**
 * A row read as `to_jsonb(row)` in the shape Prisma returns (camelCase keys, the named timestamp
 * columns as Dates), for reads that fetch several rows of different tables in one round trip.
 */
export function jsonRow<T>(row: Record<string, unknown> | null | undefined, dates: readonly string[]): T | null {
  const out = camelRow<Record<string, unknown>>(row ?? undefined);
  if (!out) return null;
  for (const k of dates) if (typeof out[k] === 'string') out[k] = new Date(out[k] as string);
  return out as T;
}
