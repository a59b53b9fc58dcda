import { Database } from '@app/db';
import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { Public } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { REDIS } from '../infra/infra.module.js';

const Readiness = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    checks: z.object({ postgres: z.enum(['ok', 'down']), redis: z.enum(['ok', 'down']) }),
    message: z.string().optional(),
  })
  .meta({ id: 'Readiness' });

export const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  @Get('healthz')
  @Endpoint({ summary: 'The process lives', tags: ['Operations'], response: z.object({ status: z.literal('ok') }) })
  healthz() {
    return { status: 'ok' as const };
  }

  @Get('readyz')
  @Endpoint({ summary: 'PostgreSQL and Redis answer (503 naming the one that does not)', tags: ['Operations'], response: Readiness, errors: [503] })
  async readyz(@Res({ passthrough: true }) reply: FastifyReply) {
    const [postgres, redis] = await Promise.all([
      within(this.db.ping(), 2_000).then(() => 'ok' as const, () => 'down' as const),
      within(this.redis.ping(), 2_000).then(() => 'ok' as const, () => 'down' as const),
    ]);
    const down = [postgres === 'down' && 'postgres', redis === 'down' && 'redis'].filter(Boolean);
    if (down.length) reply.status(503);
    return {
      status: down.length ? ('unavailable' as const) : ('ok' as const),
      checks: { postgres, redis },
      ...(down.length ? { message: `not ready: ${down.join(' and ')} ${down.length > 1 ? 'do' : 'does'} not answer` } : {}),
    };
  }
}
