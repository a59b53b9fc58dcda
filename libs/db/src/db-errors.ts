/**
 * Reading PostgreSQL's errors through the layers that wrap them (Prisma's `meta`, the driver
 * adapter's `cause`, plain `pg`), for the API's error mapping: a few of them are the request's
 * fault or the server's absence, not a bug, and must not be a 500.
 */

/** SQLSTATEs that mean "the server is not there right now", not "your query is wrong". */
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown: the server is stopping (or restarting) and closed our session
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, or recovering after a crash
  '53300', // too_many_connections
]);

/** Socket errors of a connection that could not be made or was cut. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

/** Prisma's codes for the same: can't reach (P1001), timed out (P1002, P1008), connection closed (P1017), pool timeout (P2024). */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);

/** Driver adapter error kinds (Prisma 7, @prisma/adapter-pg) with the same meaning. */
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

/** What `pg` says when the pool cannot connect in time or a connection dies under a query. */
const MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection error and is not queryable|the database system is (?:starting up|shutting down|in recovery mode)|terminating connection due to administrator command|Can't reach database server|Server has closed the connection/i;

type Wrapped = {
  code?: unknown;
  severity?: unknown;
  kind?: unknown;
  originalCode?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
};

/** Every layer of an error: the error, its `cause`, Prisma's driver adapter error, and theirs. */
function* layers(err: unknown, depth = 0): Generator<Wrapped> {
  if (!err || typeof err !== 'object' || depth > 4) return;
  const e = err as Wrapped;
  yield e;
  yield* layers(e.cause, depth + 1);
  yield* layers(e.meta?.driverAdapterError, depth + 1);
}

/** The SQLSTATE PostgreSQL answered with, if the error came from it. */
export function sqlState(err: unknown): string | null {
  for (const e of layers(err)) {
    // A `pg` DatabaseError carries the SQLSTATE in `code` (and a `severity`); the adapter keeps it as `originalCode`.
    if (typeof e.severity === 'string' && typeof e.code === 'string') return e.code;
    if (typeof e.originalCode === 'string') return e.originalCode;
  }
  return null;
}

/**
 * Whether an error means PostgreSQL is unreachable (down, restarting, refusing connections) rather
 * than a fault of the request or the code.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const state = sqlState(err);
  if (state && (UNAVAILABLE_STATES.has(state) || state.startsWith('08'))) return true;
  for (const e of layers(err)) {
    if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || PRISMA_CODES.has(e.code))) return true;
    if (typeof e.kind === 'string' && ADAPTER_KINDS.has(e.kind)) return true;
    if (typeof e.message === 'string' && MESSAGES.test(e.message)) return true;
  }
  return false;
}

/** Whether PostgreSQL refused a value's characters: U+0000 in text (22021) or in jsonb (22P05). */
export function isUnstorableText(err: unknown): boolean {
  const state = sqlState(err);
  return state === '22021' || state === '22P05';
}
