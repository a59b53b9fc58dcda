import { describe, expect, it } from '@jest/globals';
import { isDatabaseUnavailable, isUnstorableText, sqlState } from './db-errors.js';

/** Shaped like what `pg` throws, and like Prisma's wrapping of it through the driver adapter. */
const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code, severity: 'ERROR' });
const prismaError = (code: string, cause: Record<string, unknown>) =>
  Object.assign(new Error('Invalid `prisma.x()` invocation'), {
    code,
    clientVersion: '7',
    meta: { driverAdapterError: Object.assign(new Error('adapter'), { cause }) },
  });

describe('database errors', () => {
  it('reads the SQLSTATE from pg and from Prisma alike', () => {
    expect(sqlState(pgError('22021'))).toBe('22021');
    expect(sqlState(prismaError('P2010', { kind: 'postgres', originalCode: '22P05' }))).toBe('22P05');
    expect(sqlState(Object.assign(new Error('P1001'), { code: 'P1001' }))).toBeNull();
  });

  it('knows U+0000 refusals', () => {
    expect(isUnstorableText(pgError('22021'))).toBe(true);
    expect(isUnstorableText(prismaError('P2010', { kind: 'postgres', originalCode: '22P05' }))).toBe(true);
    expect(isUnstorableText(pgError('23505'))).toBe(false);
  });

  it('knows an unreachable or restarting server, and nothing else', () => {
    expect(
      isDatabaseUnavailable(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' }),
      ),
    ).toBe(true);
    expect(isDatabaseUnavailable(pgError('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('57P03', 'the database system is starting up'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('08006'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailable(prismaError('P1001', { kind: 'DatabaseNotReachable', host: '127.0.0.1' }))).toBe(true);
    expect(isDatabaseUnavailable(prismaError('P1017', { kind: 'ConnectionClosed' }))).toBe(true);
    expect(isDatabaseUnavailable(pgError('23505', 'duplicate key'))).toBe(false);
    expect(isDatabaseUnavailable(pgError('42P01', 'relation "x" does not exist'))).toBe(false);
    expect(isDatabaseUnavailable(new RangeError('Maximum call stack size exceeded'))).toBe(false);
  });
});
